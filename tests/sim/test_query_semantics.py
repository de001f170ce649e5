"""ONTAP's query and body strictness: shorthands, unknown arguments and fields, body fields and types."""

from __future__ import annotations

import pytest
from netapp_ontap.error import NetAppRestError
from netapp_ontap.resources import Aggregate, ExportRule, Volume

from tests.sim.util import error_of

FV = {"name": "vol_a", "svm": {"name": "llm-lab"}, "size": "1GB", "guarantee": {"type": "none"}}


def sdk_error(call) -> tuple[int, str, str, str | None]:
    with pytest.raises(NetAppRestError) as err:
        call()
    body = err.value.http_err_response.http_response.json()["error"]
    return err.value.status_code, body["code"], body["message"], body.get("target")


def test_svm_shorthand_lists_the_svms_volumes(raw, ontap):
    names = [r["name"] for r in raw("GET", "/api/storage/volumes?svm=llm-lab").json()["records"]]
    assert names == ["llm_lab_root"]
    assert raw("GET", "/api/storage/volumes?svm=other").json()["num_records"] == 0
    svm_uuid = raw("GET", "/api/svm/svms?name=llm-lab").json()["records"][0]["uuid"]
    assert raw("GET", f"/api/storage/volumes?svm={svm_uuid}").json()["num_records"] == 1
    assert Volume.find(name="llm_lab_root", svm="llm-lab").name == "llm_lab_root"
    assert Volume.find(name="llm_lab_root", svm="other") is None


def test_shorthand_for_other_named_objects(raw, ontap):
    records = raw("GET", "/api/storage/aggregates?node=cluster1-01").json()["records"]
    assert [r["name"] for r in records] == ["aggr1"]
    assert raw("GET", "/api/storage/volumes?aggregates=aggr1").json()["num_records"] == 1
    assert [a.name for a in Aggregate.get_collection(node="cluster1-02")] == ["aggr2"]


def test_unknown_query_argument_is_262179(raw, ontap):
    answer = raw("GET", "/api/storage/volumes?no_such_field=1")
    assert error_of(answer) == (400, "262179", 'Unexpected argument "no_such_field".')
    assert answer.json()["error"]["target"] == "no_such_field"
    status, code, message, target = sdk_error(lambda: list(Volume.get_collection(no_such_field=1)))
    assert (status, code, target) == (400, "262179", "no_such_field")
    assert error_of(raw("DELETE", "/api/storage/volumes/x?bogus=1"))[1] == "262179"


def test_unknown_fields_name_is_262197(raw, ontap):
    answer = raw("GET", "/api/storage/volumes?fields=name,no_such_field")
    assert error_of(answer) == (400, "262197",
                                'The value "no_such_field" is invalid for field "fields" (<field,...>)')
    assert answer.json()["error"]["target"] == "fields"
    assert raw("GET", "/api/storage/volumes?fields=space.*,nas.path,svm.name,").status_code == 200
    status, code, _, target = sdk_error(lambda: list(Volume.get_collection(fields="no_such_field")))
    assert (status, code, target) == (400, "262197", "fields")


def test_unknown_body_field_is_262179(raw, ontap):
    answer = raw("POST", "/api/storage/volumes", json={**FV, "nas": {"no_such": 1}})
    assert error_of(answer) == (400, "262179", 'Unexpected argument "nas.no_such".')
    answer = raw("POST", "/api/storage/volumes", json={**FV, "svm.nickname": "x"})
    assert error_of(answer)[1] == "262179" and answer.json()["error"]["target"] == "svm.nickname"
    policy = raw("GET", "/api/protocols/nfs/export-policies?name=default").json()["records"][0]["id"]
    answer = raw("POST", f"/api/protocols/nfs/export-policies/{policy}/rules",
                 json={"clients": [{"match": "10.0.0.1"}], "ro_rule": ["sys"], "rw_rule": ["sys"], "x": 1})
    assert error_of(answer)[1] == "262179"


def test_wrong_body_type_is_262197_and_types_are_stored_as_ontap_does(raw, ontap):
    answer = raw("POST", "/api/storage/volumes", json={**FV, "nas": {"unix_permissions": "rwxr-x---"}})
    assert error_of(answer) == (400, "262197",
                                '"rwxr-x---" is an invalid value for field "nas.unix_permissions"')
    assert answer.json()["error"]["target"] == "nas.unix_permissions"
    assert error_of(raw("POST", "/api/storage/volumes", json={**FV, "size": True}))[1] == "262197"
    assert error_of(raw("POST", "/api/storage/volumes", json={**FV, "state": "sideways"}))[1] == "262197"
    assert error_of(raw("POST", "/api/storage/volumes", json={**FV, "svm": ["llm-lab"]}))[1] == "262197"
    body = {**FV, "nas.unix_permissions": "750", "nas.path": "/vol_a"}
    assert raw("POST", "/api/storage/volumes?return_timeout=30", json=body).status_code == 201
    record = raw("GET", "/api/storage/volumes?name=vol_a&fields=nas.unix_permissions").json()["records"][0]
    assert record["nas"]["unix_permissions"] == 750
    volume = Volume.find(name="vol_a", fields="nas.unix_permissions")
    assert volume.nas.unix_permissions == 750
    answer = raw("PATCH", f"/api/storage/volumes/{record['uuid']}", json={"access_time_enabled": "maybe"})
    assert error_of(answer)[1] == "262197"
    assert raw("PATCH", f"/api/storage/volumes/{record['uuid']}?return_timeout=30",
               json={"access_time_enabled": "false"}).status_code == 200
    assert Volume.find(name="vol_a", fields="access_time_enabled").access_time_enabled is False


def test_sdk_rule_with_string_index_is_stored_as_integer(ontap, raw):
    policy = raw("GET", "/api/protocols/nfs/export-policies?name=default").json()["records"][0]["id"]
    answer = raw("POST", f"/api/protocols/nfs/export-policies/{policy}/rules?return_records=true",
                 json={"clients": [{"match": "10.0.0.1"}], "ro_rule": "sys", "rw_rule": "sys", "index": "5"})
    assert answer.status_code == 201 and answer.json()["records"][0]["index"] == 5
    assert [r.index for r in ExportRule.get_collection(policy)] == [5]
