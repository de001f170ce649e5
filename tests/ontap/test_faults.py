"""Transient REST failures on every provisioning call in turn: provision converges, with no duplicates."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from rich.console import Console

from labctl.config.lab import load_lab_config
from labctl.lab.provision import provision_storage

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def summary(state: dict[str, Any]) -> dict[str, Any]:
    """The simulator's state without generated ids: what must be identical after a faulty run."""
    nfs = [
        (
            s["protocol"]["v41_enabled"],
            s["protocol"]["v41_features"]["pnfs_enabled"],
            s["transport"]["tcp_max_transfer_size"],
        )
        for s in state["nfs_services"].values()
    ]
    policies = sorted(
        (
            p["name"],
            sorted(
                (tuple(sorted(c["match"] for c in r["clients"])), tuple(r["rw_rule"]))
                for r in p.get("rules", [])
            ),
        )
        for p in state["export_policies"].values()
    )
    volumes = sorted(
        (v["name"], v["style"], v["size"], v.get("nas", {}).get("path")) for v in state["volumes"].values()
    )
    lifs = sorted(i["name"] for i in state["interfaces"].values())
    return {"nfs": nfs, "policies": policies, "volumes": volumes, "lifs": lifs}


def _calls(requests: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Distinct (method, path glob) of a run, in order; generated ids become `*`."""
    seen: dict[tuple[str, str], None] = {}
    for r in requests:
        seen[(r["method"], UUID.sub("*", r["path"]))] = None
    return list(seen)


@pytest.fixture
def reference(lab) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The state and the calls of a clean provision (the simulator is reset afterwards)."""
    assert lab.run("provision", "--only", "storage")[0] == 0
    result = summary(lab.sim.state()), _calls(lab.sim.requests())
    lab.sim.reset()
    return result


def _faulty_run(lab, monkeypatch, n: int, **fault: Any) -> tuple[int, str]:
    lab.sim.reset()
    monkeypatch.setenv("LABCTL_STATE_DIR", str(lab.root / f"state-{n}"))
    lab.sim.add_fault(count=1, **fault)
    rc, _, err = lab.run("provision", "--only", "storage")
    fired = [f for f in lab.sim.app.faults.list() if f["fired"]]
    assert fired, f"fault {fault} never fired"
    return rc, err


def _storage_run(lab, cfg: Any, n: int, **fault: Any) -> None:
    """One storage provision through the library (the CLI path is covered above): config loaded once."""
    lab.sim.reset()
    lab.sim.add_fault(count=1, **fault)
    provision_storage(cfg, lab.root / f"state-{n}", plan=False, console=Console(file=io.StringIO()))
    assert [f for f in lab.sim.app.faults.list() if f["fired"]], f"fault {fault} never fired"


def test_a_503_on_each_call_in_turn_converges(lab, reference, monkeypatch):
    state, calls = reference
    assert len(calls) >= 10
    assert ("POST", "/api/storage/volumes") in calls
    rc, err = _faulty_run(
        lab, monkeypatch, 99, action="error", status=503, method="POST", path="/api/storage/volumes"
    )
    assert rc == 0, err  # once through the CLI; then every call through the library
    cfg = load_lab_config(lab.inventory)
    for n, (method, path) in enumerate(calls):
        _storage_run(lab, cfg, n, action="error", status=503, method=method, path=path)
        assert summary(lab.sim.state()) == state, f"{method} {path}"


def test_resets_and_lost_answers_on_each_mutation_never_duplicate(lab, reference, monkeypatch):
    state, calls = reference
    mutations = [c for c in calls if c[0] != "GET"]
    assert [m for m, _ in mutations] == ["PATCH", "POST", "POST", "POST"]
    # "delay": the call takes effect, but only after the client gave up waiting (a lost answer)
    lab.configure(labctl_ontap_timeout=0.2, labctl_ontap_retry_backoff=0.5)
    cfg = load_lab_config(lab.inventory)
    for n, (method, path) in enumerate(mutations):
        for k, fault in enumerate(({"action": "reset"}, {"action": "delay", "delay": 0.4})):
            _storage_run(lab, cfg, 10 * n + k, method=method, path=path, **fault)
            assert summary(lab.sim.state()) == state, f"{fault} on {method} {path}"
            sent = [
                r for r in lab.sim.requests() if r["method"] == method and UUID.sub("*", r["path"]) == path
            ]
            assert len(sent) == (2 if fault["action"] == "reset" or method == "PATCH" else 1)


def test_a_failed_job_is_reported_and_a_rerun_converges(lab, reference, monkeypatch):
    state, _ = reference
    rc, err = _faulty_run(
        lab,
        monkeypatch,
        0,
        action="job_failure",
        method="POST",
        path="/api/storage/volumes",
        message="Injected: aggregate offline",
        code="917536",
    )
    assert rc == 1
    assert "Injected: aggregate offline" in err and "Traceback" not in err
    rc, _, err = lab.run("provision", "--only", "storage")
    assert rc == 0, err
    assert summary(lab.sim.state()) == state


def test_persistent_5xx_gives_up_with_ontaps_message(lab, monkeypatch):
    lab.sim.add_fault(
        action="error",
        status=503,
        code="0",
        message="Injected: busy",
        method="POST",
        path="/api/protocols/nfs/export-policies",
        count=None,
    )
    rc, _, err = lab.run("provision", "--only", "storage")
    assert rc == 1
    assert "cannot create export policy labctl_fg_llm: ONTAP says: Injected: busy (HTTP 503" in err
    posts = [r for r in lab.sim.requests() if r["method"] == "POST"]
    assert len(posts) == 6  # the first try and five retries
