"""The control API: request log, reset, state dumps, injected faults, job progression, several clients."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
import time

import pytest
import requests
from netapp_ontap import HostConnection
from netapp_ontap.error import NetAppRestError
from netapp_ontap.resources import Aggregate, ExportPolicy, Volume

from tests.sim.util import Raw, error_of

FLEXVOL = {"name": "v1", "svm.name": "llm-lab", "size": "1GB", "nas.path": "/v1"}


def test_request_log_state_and_reset(raw, sim):
    seeded = raw("GET", "/_sim/state").json()
    assert "jobs" not in seeded and set(seeded) >= {"volumes", "svms", "aggregates", "export_policies"}
    raw("POST", "/api/storage/volumes?return_timeout=5", json=FLEXVOL)
    log = raw("GET", "/_sim/requests").json()["records"]
    assert [(e["method"], e["path"], e["query"], e["status"]) for e in log] == [
        ("POST", "/api/storage/volumes", "return_timeout=5", 201)]
    assert log[0]["body"] == FLEXVOL
    assert raw("GET", "/_sim/state").json() != seeded
    assert "jobs" in raw("GET", "/_sim/state?include=jobs").json()
    assert set(raw("GET", "/_sim/state?exclude=jobs,volumes").json()) == set(seeded) - {"volumes"}
    assert raw("POST", "/_sim/reset").status_code == 200
    assert raw("GET", "/_sim/state").json() == seeded
    assert raw("GET", "/_sim/requests").json()["records"] == []
    assert not (sim.data_dir / "llm-lab" / "v1").exists()


def test_error_fault_hits_the_next_n_matching_calls(raw, ontap):
    fault = {"method": "GET", "path": "/api/storage/aggregates*", "status": 503, "code": "9",
             "message": "busy", "count": 2}
    assert raw("POST", "/_sim/faults", json=fault).status_code == 201
    assert error_of(raw("GET", "/api/storage/aggregates")) == (503, "9", "busy")
    with pytest.raises(NetAppRestError):
        list(Aggregate.get_collection())
    assert len(list(Aggregate.get_collection())) == 2
    assert raw("GET", "/api/cluster").status_code == 200
    assert raw("GET", "/_sim/faults").json()["records"][0]["fired"] == 2


def test_fraction_fault_is_reproducible(raw):
    raw("POST", "/_sim/faults", json={"path": "/api/cluster", "fraction": 0.5, "count": None, "seed": 7})
    first = [raw("GET", "/api/cluster").status_code for _ in range(40)]
    raw("POST", "/_sim/reset")
    raw("POST", "/_sim/faults", json={"path": "/api/cluster", "fraction": 0.5, "count": None, "seed": 7})
    assert [raw("GET", "/api/cluster").status_code for _ in range(40)] == first
    assert 5 < first.count(503) < 35


def test_delay_and_connection_reset_faults(raw, sim):
    raw("POST", "/_sim/faults", json={"faults": [
        {"action": "delay", "path": "/api/cluster", "delay": 0.3},
        {"action": "reset", "path": "/api/svm/svms"}]})
    start = time.monotonic()
    assert raw("GET", "/api/cluster").status_code == 200
    assert time.monotonic() - start >= 0.3
    with pytest.raises(requests.ConnectionError):
        raw("GET", "/api/svm/svms")
    assert raw("GET", "/api/svm/svms").status_code == 200
    assert [e["status"] for e in sim.requests()] == [200, 0, 200]



def test_a_call_delayed_across_a_reset_never_touches_the_new_state(raw, sim):
    """A client that timed out on a delayed create must not see it land in the state after a reset."""
    sim.add_fault(action="delay", method="POST", path="/api/protocols/nfs/export-policies", delay=0.8)
    with pytest.raises(requests.Timeout):
        raw.session.post(sim.url + "/api/protocols/nfs/export-policies", timeout=0.2,
                         json={"name": "late", "svm.name": "llm-lab"})
    sim.reset()
    seeded = sim.state()
    time.sleep(1.2)  # the delayed call wakes up after the reset
    assert sim.state() == seeded
    names = [p["name"] for p in raw("GET", "/api/protocols/nfs/export-policies").json()["records"]]
    assert "late" not in names

def test_job_failure_fault(raw, ontap):
    raw("POST", "/_sim/faults", json={"action": "job_failure", "method": "POST",
                                      "path": "/api/storage/volumes", "code": "917536",
                                      "message": "aggregate offline"})
    with pytest.raises(NetAppRestError, match="aggregate offline"):
        Volume(name="v1", svm={"name": "llm-lab"}, size="1GB").post(poll=True)
    assert raw("GET", "/api/storage/volumes?name=v1").json()["num_records"] == 0
    assert raw("POST", "/api/storage/volumes?return_timeout=5", json=FLEXVOL).status_code == 201


def test_job_after_n_polls(raw, ontap):
    mode = {"mode": "polls", "polls": 3}
    assert raw("POST", "/_sim/jobs", json=mode).json() == mode
    answer = raw("POST", "/api/storage/volumes?return_timeout=30", json=FLEXVOL)
    assert answer.status_code == 202
    href = answer.json()["job"]["_links"]["self"]["href"]
    assert [raw("GET", href).json()["state"] for _ in range(4)] == ["queued", "running", "success", "success"]
    Volume(name="v2", svm={"name": "llm-lab"}, size="1GB").post(poll=True)
    assert Volume.find(name="v2") is not None


def test_job_after_seconds_honours_return_timeout(raw):
    raw("POST", "/_sim/jobs", json={"mode": "seconds", "seconds": 1.5})
    quick = raw("POST", "/api/storage/volumes", json=FLEXVOL)
    assert quick.status_code == 202
    href = quick.json()["job"]["_links"]["self"]["href"]
    assert raw("GET", href).json()["state"] in ("queued", "running")
    assert raw("GET", "/api/storage/volumes?name=v1").json()["num_records"] == 0
    unmounted = {**FLEXVOL, "name": "v2", "nas.path": ""}
    waited = raw("POST", "/api/storage/volumes?return_timeout=5", json=unmounted)
    assert waited.status_code == 201
    assert raw("GET", href).json()["state"] == "success"
    assert raw("GET", "/api/storage/volumes?name=v1").json()["num_records"] == 1
    raw("POST", "/_sim/jobs", json={"mode": "seconds", "seconds": 5})
    assert raw("POST", "/api/storage/volumes?return_timeout=1",
               json={**FLEXVOL, "name": "v3", "nas.path": ""}).status_code == 202
    assert error_of(raw("POST", "/_sim/jobs", json={"mode": "never"}))[:2] == (400, "262197")


def test_several_clients_at_once(sim, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.ca_file)
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            with HostConnection("127.0.0.1", port=sim.port, username=sim.username, password=sim.password,
                                verify=sim.ca_file, poll_interval=0.05):
                policy = ExportPolicy(name=f"p{i}", svm={"name": "llm-lab"})
                policy.post()
                Volume(name=f"v{i}", svm={"name": "llm-lab"}, size="1GB").post(poll=True)
                for _ in range(5):
                    assert len(list(Aggregate.get_collection())) == 2
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    raw = Raw(sim)
    ids = [r["id"] for r in raw("GET", "/api/protocols/nfs/export-policies?name=p*").json()["records"]]
    assert len(set(ids)) == 8
    assert raw("GET", "/api/storage/volumes?name=v*&return_records=false").json()["num_records"] == 8


def test_keep_alive_serves_many_requests_on_one_connection(sim):
    context = ssl.create_default_context(cafile=sim.ca_file)
    conn = http.client.HTTPSConnection("127.0.0.1", sim.port, context=context, timeout=5)
    token = base64.b64encode(f"{sim.username}:{sim.password}".encode()).decode()
    try:
        for _ in range(3):
            conn.request("GET", "/api/cluster?fields=version", headers={"Authorization": f"Basic {token}"})
            answer = conn.getresponse()
            assert answer.status == 200 and json.loads(answer.read())["version"]["major"] == 14
        assert conn.sock is not None
    finally:
        conn.close()
