"""`POST /_sim/nfs/mount`: what a real NFS server answers to a mount attempt."""

from __future__ import annotations

import pytest

MOUNT_OPTS = "vers=4.1,proto=tcp,rsize=1048576,wsize=1048576,hard,nconnect=16"


@pytest.fixture
def svm_uuid(raw) -> str:
    return raw("GET", "/api/svm/svms?name=llm-lab").json()["records"][0]["uuid"]


def mount(raw, server="127.0.0.1", export="/fg_llm", client="127.0.0.1", options=MOUNT_OPTS):
    answer = raw("POST", "/_sim/nfs/mount",
                 json={"server": server, "export": export, "client": client, "options": options})
    return answer.status_code, answer.json()


def provision(raw, svm_uuid: str, clients: str = "127.0.0.0/8") -> None:
    raw("PATCH", f"/api/protocols/nfs/services/{svm_uuid}",
        json={"protocol.v41_enabled": "true", "protocol.v41_features.pnfs_enabled": "true"})
    pid = raw("POST", "/api/protocols/nfs/export-policies?return_records=true",
              json={"name": "llm_policy", "svm.name": "llm-lab"}).json()["records"][0]["id"]
    raw("POST", f"/api/protocols/nfs/export-policies/{pid}/rules",
        json={"clients": [{"match": clients}], "ro_rule": ["sys"], "rw_rule": ["sys"], "protocols": ["nfs"]})
    raw("POST", "/api/storage/volumes",
        json={"name": "fg_llm", "svm.name": "llm-lab", "aggregates": [{"name": "aggr1"}, {"name": "aggr2"}],
              "constituents_per_aggregate": 8, "size": "10TB", "guarantee.type": "none",
              "nas.path": "/fg_llm", "nas.export_policy.name": "llm_policy"})


def reason(result: tuple[int, dict]) -> tuple[int, str, str]:
    status, body = result
    return status, body["error"]["code"], body["error"]["message"]


def test_seeded_cluster_refuses_v41(raw):
    assert reason(mount(raw)) == (403, "protocol_not_supported", "mount.nfs: Protocol not supported")
    status, body = mount(raw, export="/", options="vers=3")
    assert status == 403 and body["error"]["code"] == "access_denied"
    assert body["error"]["exit_status"] == 32


def test_granted_options_follow_the_svm(raw, svm_uuid, sim):
    provision(raw, svm_uuid)
    status, body = mount(raw)
    assert status == 200
    assert body["directory"] == str(sim.data_dir / "llm-lab" / "fg_llm")
    assert body["granted"] == {"vers": "4.1", "rsize": 65536, "wsize": 65536, "nconnect": 16, "pnfs": True,
                               "proto": "tcp", "hard": True, "sec": "sys"}
    service = f"/api/protocols/nfs/services/{svm_uuid}"
    raw("PATCH", service, json={"transport.tcp_max_transfer_size": 1048576})
    assert mount(raw, server="127.0.0.2")[1]["granted"]["rsize"] == 1048576
    raw("PATCH", service, json={"protocol.v41_features.pnfs_enabled": False})
    assert mount(raw)[1]["granted"]["pnfs"] is False
    (sim.data_dir / "llm-lab" / "fg_llm" / "data").mkdir()
    assert mount(raw, export="/fg_llm/data")[1]["directory"].endswith("fg_llm/data")


def test_refusals(raw, svm_uuid):
    provision(raw, svm_uuid, clients="127.0.0.1")
    assert reason(mount(raw, client="127.0.0.9")) == (
        403, "access_denied", "mount.nfs: access denied by server while mounting 127.0.0.1:/fg_llm")
    assert reason(mount(raw, export="/nope"))[1] == "no_such_export"
    assert reason(mount(raw, export="/fg_llm/missing"))[1] == "no_such_export"
    refused = (403, "connection_refused", "mount.nfs: Connection refused")
    assert reason(mount(raw, server="127.0.0.77")) == refused
    assert reason(mount(raw, options="vers=4.2"))[1] == "protocol_not_supported"
    raw("PATCH", f"/api/protocols/nfs/services/{svm_uuid}", json={"enabled": False})
    assert reason(mount(raw))[1] == "connection_refused"
    assert raw("POST", "/_sim/nfs/mount", json={"server": "127.0.0.1"}).status_code == 400
