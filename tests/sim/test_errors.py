"""ONTAP's error envelope and codes, through the SDK and as raw HTTP answers."""

from __future__ import annotations

import pytest
import requests
from netapp_ontap.error import NetAppRestError
from netapp_ontap.resources import ExportPolicy, Volume

from tests.sim.util import error_of

FG = {"name": "fg_llm", "svm.name": "llm-lab", "aggregates": [{"name": "aggr1"}, {"name": "aggr2"}],
      "constituents_per_aggregate": 8, "size": 10995116277760, "guarantee.type": "none",
      "nas.path": "/fg_llm"}


def sdk_error(call) -> tuple[int, str, str]:
    with pytest.raises(NetAppRestError) as err:
        call()
    body = err.value.http_err_response.http_response.json()["error"]
    return err.value.status_code, body["code"], body["message"]


def test_wrong_password_is_401_with_ontap_body(sim):
    answer = requests.get(sim.url + "/api/cluster", auth=(sim.username, "wrong"), verify=sim.ca_file,
                          timeout=5)
    assert error_of(answer) == (401, "6691623", "User is not authorized.")
    assert requests.get(sim.url + "/_sim/state", verify=sim.ca_file, timeout=5).status_code == 401


def test_unknown_api_and_method(raw):
    assert error_of(raw("GET", "/api/storage/nothing")) == (404, "3", "API not found")
    assert raw("PUT", "/api/storage/volumes").status_code == 405


def test_duplicate_volume_name(ontap, raw):
    assert raw("POST", "/api/storage/volumes?return_timeout=30", json=FG).status_code == 201
    status, code, message = sdk_error(lambda: Volume(**{"name": "fg_llm", "svm": {"name": "llm-lab"}}).post())
    assert (status, code) == (409, "917526") and "Duplicate volume name fg_llm" in message


@pytest.mark.parametrize(("change", "expected"), [
    ({"svm.name": "nope"}, (400, "2621462")),
    ({"svm.name": None}, (400, "2621707")),
    ({"aggregates": [{"name": "aggr9"}]}, (400, "917508")),
    ({"nas.export_policy.name": "nope"}, (400, "918271")),
    ({"nas.path": "fg_llm"}, (400, "918252")),
    ({"style": "striped"}, (400, "262197")),
    ({"size": "lots"}, (400, "262197")),
    ({"name": "9fg"}, (400, "917887")),
    ({"name": "fg-llm"}, (400, "917888")),
    ({"size": 1 << 20}, (400, "917534")),
    ({"bogus_field": 1}, (400, "262179")),
])
def test_volume_create_validation(raw, change, expected):
    body = {**FG, **change}
    body = {k: v for k, v in body.items() if v is not None}
    assert error_of(raw("POST", "/api/storage/volumes", json=body))[:2] == expected


def test_insufficient_space_fails_the_job(ontap, raw):
    thick = {**FG, "guarantee.type": "volume", "size": 200 * (1 << 40)}
    answer = raw("POST", "/api/storage/volumes", json=thick)
    assert answer.status_code == 202
    job = raw("GET", answer.json()["job"]["_links"]["self"]["href"]).json()
    assert job["state"] == "failure" and job["code"] == 917536 and job["error"]["code"] == "917536"
    assert "not enough space in aggregate" in job["message"]
    big = Volume(name="big", svm={"name": "llm-lab"}, size="300TB", guarantee={"type": "volume"})
    with pytest.raises(NetAppRestError, match="not enough space in aggregate"):
        big.post(poll=True)


def test_mounted_volume_cannot_go_offline_or_be_deleted(raw):
    raw("POST", "/api/storage/volumes", json=FG)
    uuid = raw("GET", "/api/storage/volumes?name=fg_llm").json()["records"][0]["uuid"]
    offline = raw("PATCH", f"/api/storage/volumes/{uuid}", json={"state": "offline"})
    assert error_of(offline) == (400, "524546", 'Volume "fg_llm" on SVM "llm-lab" must be unmounted before '
                                                "being taken offline or restricted.")
    assert error_of(raw("DELETE", f"/api/storage/volumes/{uuid}"))[:2] == (400, "524546")
    assert raw("PATCH", f"/api/storage/volumes/{uuid}", json={"nas.path": "", "state": "offline"}
               ).status_code == 202
    assert raw("DELETE", f"/api/storage/volumes/{uuid}").status_code == 202
    assert error_of(raw("GET", f"/api/storage/volumes/{uuid}")) == (404, "4", "entry doesn't exist")


def test_entry_does_not_exist(raw):
    for path in ("/api/storage/volumes/123", "/api/cluster/jobs/123", "/api/network/ip/interfaces/1",
                 "/api/protocols/nfs/export-policies/42", "/api/protocols/nfs/services/x"):
        assert error_of(raw("GET", path))[:2] == (404, "4")
        assert raw("DELETE", path).status_code in (404, 405)


def test_export_policy_errors(ontap, raw):
    seed_id = ExportPolicy.find(name="default").id
    assert error_of(raw("DELETE", f"/api/protocols/nfs/export-policies/{seed_id}"))[:2] == (400, "1703947")
    ExportPolicy(name="p1", svm={"name": "llm-lab"}).post()
    status, code, _ = sdk_error(lambda: ExportPolicy(name="p1", svm={"name": "llm-lab"}).post())
    assert (status, code) == (409, "1")
    assert sdk_error(lambda: ExportPolicy(name="p2", svm={"name": "x"}).post())[:2] == (400, "2621462")
    p1 = ExportPolicy.find(name="p1").id
    rule = {"clients": [{"match": "10.0.0.0/24"}], "ro_rule": ["sys"], "rw_rule": ["sys"]}
    assert raw("POST", f"/api/protocols/nfs/export-policies/{p1}/rules", json=rule).status_code == 201
    assert error_of(raw("POST", f"/api/protocols/nfs/export-policies/{p1}/rules", json=rule))[:2] == \
        (409, "1704070")
    bad = {**rule, "clients": [{"match": "10.0.0.0/99"}]}
    assert error_of(raw("POST", f"/api/protocols/nfs/export-policies/{p1}/rules", json=bad))[:2] == \
        (400, "1704039")
    assert error_of(raw("POST", f"/api/protocols/nfs/export-policies/{p1}/rules",
                        json={**rule, "rw_rule": ["bogus"]}))[:2] == (400, "262197")
    assert error_of(raw("POST", "/api/protocols/nfs/export-policies/77/rules", json=rule))[:2] == (404, "4")
    raw("POST", "/api/storage/volumes", json={**FG, "nas.export_policy.name": "p1"})
    assert error_of(raw("DELETE", f"/api/protocols/nfs/export-policies/{p1}"))[:2] == (400, "1703945")


def test_nfs_and_interface_errors(raw):
    svm = raw("GET", "/api/svm/svms?name=llm-lab").json()["records"][0]["uuid"]
    assert error_of(raw("POST", "/api/protocols/nfs/services", json={"svm.name": "llm-lab"}))[0] == 409
    assert error_of(raw("PATCH", f"/api/protocols/nfs/services/{svm}",
                        json={"protocol.v41_enabled": "maybe"}))[:2] == (400, "262197")
    assert error_of(raw("PATCH", f"/api/protocols/nfs/services/{svm}", json={"svm": {"name": "x"}}))[:2] == \
        (400, "262196")
    lif = {"name": "lif_n1", "svm.name": "llm-lab", "ip": {"address": "127.0.0.9", "netmask": "8"},
           "location": {"home_port": {"name": "e0d", "node": {"name": "cluster1-01"}}}}
    assert error_of(raw("POST", "/api/network/ip/interfaces", json=lif))[:2] == (409, "1966140")
    dup_ip = {**lif, "name": "lif_x", "ip": {"address": "127.0.0.1", "netmask": "8"}}
    assert error_of(raw("POST", "/api/network/ip/interfaces", json=dup_ip))[:2] == (400, "1376963")
    bad_node = {**lif, "name": "lif_y", "location": {"home_port": {"name": "e0d", "node": {"name": "n9"}}}}
    assert error_of(raw("POST", "/api/network/ip/interfaces", json=bad_node))[:2] == (400, "393271")
    assert error_of(raw("POST", "/api/svm/svms", json={"name": "llm-lab"}))[:2] == (409, "13434908")
