"""ONTAP faults through the simulator's fault API, on every call of provision and teardown in turn.

tests/ontap/test_faults.py covers a 503 on every provision call and resets/lost answers on provision's
mutations. Here: resets and timeouts (a delay beyond `labctl_ontap_timeout`) on every provision call, GETs
included; a 5xx, a timeout and a reset on every teardown call; failed volume jobs on both sides.
Each time the command converges, nothing is duplicated and the ledger stays consistent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labctl.config.lab import load_lab_config
from labctl.lab.provision import provision_storage
from labctl.lab.teardown import teardown_storage
from tests.hardening.util import MUTATING, clean_output, distinct_calls, fired, glob_path, ledger_of, quiet
from tests.ontap.test_faults import summary

CLIENT_TIMEOUT = 0.5  # short, yet longer than any answer of the simulator on a busy machine
KINDS: dict[str, dict[str, Any]] = {
    "5xx": {"action": "error", "status": 503, "message": "Injected: busy"},
    "reset": {"action": "reset"},
    "timeout": {"action": "delay", "delay": 2.5 * CLIENT_TIMEOUT},
}


@pytest.fixture
def cfg(lab) -> Any:
    """The lab's config with a short REST timeout and fast retries (loaded once: Ansible is slow)."""
    lab.configure(labctl_ontap_timeout=CLIENT_TIMEOUT, labctl_ontap_retry_backoff=0.01)
    return load_lab_config(lab.inventory)


def _provision(lab, cfg, state: Path) -> None:
    provision_storage(cfg, state, plan=False, console=quiet())


def _counts(sim: Any) -> dict[str, int]:
    state = sim.state()
    return {k: len(state[k]) for k in ("volumes", "export_policies", "interfaces", "nfs_services")}


def test_resets_and_timeouts_on_every_provision_read_converge(lab, cfg):
    _provision(lab, cfg, lab.root / "ref")
    reference, calls = summary(lab.sim.state()), distinct_calls(lab.sim.requests())
    reads = [c for c in calls if c[0] == "GET"]  # the mutations: tests/ontap/test_faults.py
    assert len(reads) >= 8 and ("GET", "/api/cluster/jobs/*") in reads
    unmade = []
    for n, (method, path) in enumerate(reads):
        for kind in ("reset", "timeout"):
            lab.sim.reset()
            lab.sim.add_fault(method=method, path=path, count=1, **KINDS[kind])
            state_dir = lab.root / f"p-{n}-{kind}"
            _provision(lab, cfg, state_dir)
            if not fired(lab.sim):
                # a fault can only miss a call this run did not make (the SDK's follow-up GET of a created
                # volume's Location is skipped when an earlier retry already found the volume)
                where = f"{kind} on {method} {path}"
                assert (method, path) not in distinct_calls(lab.sim.requests()), f"{where} never fired"
                unmade.append(where)
            assert summary(lab.sim.state()) == reference, f"{kind} on {method} {path}"
            entries = ledger_of(state_dir)["objects"]
            assert {e["state"] for e in entries.values()} == {"done"}, (kind, method, path, entries)
            created = [r for r in lab.sim.requests() if r["method"] == "POST" and 200 <= r["status"] < 300]
            assert len(created) == 3, (kind, path, created)  # policy, rule, FlexGroup: once each
    assert len(unmade) <= len(reads) * 2 // 10, unmade  # nearly every read was faulted


def test_every_fault_kind_on_every_teardown_call_converges(lab, cfg):
    seed = lab.sim.state()
    _provision(lab, cfg, lab.root / "ref")
    provisioned, ledger = lab.sim.state(), (lab.root / "ref" / "ledger.json").read_text()
    mark = len(lab.sim.requests())
    assert teardown_storage(cfg, lab.root / "ref", console=quiet()).clean
    assert lab.sim.state() == seed
    calls = distinct_calls(lab.sim.requests()[mark:])
    mutations = [c for c in calls if c[0] in MUTATING]
    assert [m for m, _ in mutations] == ["PATCH", "DELETE", "DELETE", "PATCH"], mutations
    unmade = []
    for n, (method, path) in enumerate(calls):
        for kind, fault in KINDS.items():
            lab.sim.reset()
            lab.sim.backend.load(provisioned)  # the provisioned lab again, without provisioning it again
            state_dir = lab.root / f"t-{n}-{kind}"
            state_dir.mkdir(mode=0o700)
            (state_dir / "ledger.json").write_text(ledger)
            lab.sim.add_fault(method=method, path=path, count=1, **fault)
            result = teardown_storage(cfg, state_dir, console=quiet())
            where = f"{kind} on {method} {path}"
            if not fired(lab.sim):
                # a fault can only miss a call this run did not make (a read that depends on job timing)
                assert (method, path) not in distinct_calls(lab.sim.requests()), f"{where} never fired"
                unmade.append(where)
            assert result.clean, (where, result.leftovers)
            assert lab.sim.state() == seed, where
            assert ledger_of(state_dir)["objects"] == {}, where
            # each undo is applied once: a DELETE retried after a lost answer finds the object gone (404)
            done = [r for r in lab.sim.requests() if r["method"] == "DELETE" and 200 <= r["status"] < 300]
            assert len(done) == 2, (where, done)
    assert len(unmade) <= len(calls) * len(KINDS) // 10, unmade  # nearly every call was faulted
    assert not [w for w in unmade if w.split(" on ")[1].split()[0] in MUTATING], unmade


def test_a_5xx_that_never_ends_leaves_a_resumable_teardown(lab, cfg):
    seed = lab.sim.state()
    state_dir = lab.root / "state-x"
    _provision(lab, cfg, state_dir)
    lab.sim.add_fault(action="error", status=503, message="Injected: busy", method="DELETE",
                      path="/api/storage/volumes/*", count=None)
    result = teardown_storage(cfg, state_dir, console=quiet())
    assert not result.clean
    assert any("FlexGroup fg_llm" in item and "Injected: busy" in item for item in result.leftovers)
    # the FlexGroup is still recorded (teardown can finish later); the policy it uses is kept for it
    entries = ledger_of(state_dir)["objects"]
    assert entries["volume:llm-lab/fg_llm"]["state"] == "removing"
    assert _counts(lab.sim)["volumes"] == 1 + 1 + 16  # the root volume, the FlexGroup, its constituents
    lab.sim.app.faults.clear()
    result = teardown_storage(cfg, state_dir, console=quiet())
    assert result.clean, result.leftovers
    assert lab.sim.state() == seed
    assert ledger_of(state_dir)["objects"] == {}


def test_a_failed_flexgroup_job_keeps_the_ledger_consistent(lab, cfg, monkeypatch):
    seed = lab.sim.state()
    state_dir = lab.root / "state"
    lab.sim.add_fault(action="job_failure", method="POST", path="/api/storage/volumes",
                      message="Injected: aggregate offline", code="917536")
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 1
    assert "cannot create FlexGroup fg_llm" in err and "Injected: aggregate offline" in err and "fix:" in err
    clean_output(out, err)
    entries = ledger_of(state_dir)["objects"]
    volume = entries.get("volume:llm-lab/fg_llm")
    # no volume exists, and the ledger does not claim one: at most an intent that the next run resolves
    assert not [v for v in lab.sim.state()["volumes"].values() if v["name"] == "fg_llm"]
    assert volume is None or volume["state"] == "intent", volume
    assert {e["state"] for k, e in entries.items() if k != "volume:llm-lab/fg_llm"} == {"done"}
    # status reads this state without complaint, teardown from here returns the cluster to its seed
    rc, out, err = lab.run("status", "--only", "storage", "--output", "json")
    assert rc == 0, err
    rc, out, err = lab.run("teardown", "--yes", "--only", "storage")
    assert rc == 0, out + err
    assert lab.sim.state() == seed
    # and provision after the failure completes
    lab.sim.add_fault(action="job_failure", method="POST", path="/api/storage/volumes")
    assert lab.run("provision", "--only", "storage")[0] == 1
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 0, err
    assert "verified: fg_llm: 16 constituents" in out
    assert {e["state"] for e in ledger_of(state_dir)["objects"].values()} == {"done"}


def test_a_failed_delete_job_is_a_leftover_and_the_rerun_finishes(lab, cfg):
    seed = lab.sim.state()
    state_dir = lab.root / "state-d"
    _provision(lab, cfg, state_dir)
    lab.sim.add_fault(action="job_failure", method="DELETE", path="/api/storage/volumes/*",
                      message="Injected: volume busy", code="13")
    result = teardown_storage(cfg, state_dir, console=quiet())
    assert fired(lab.sim)
    assert not result.clean
    assert any("Injected: volume busy" in item for item in result.leftovers), result.leftovers
    assert "volume:llm-lab/fg_llm" in ledger_of(state_dir)["objects"]
    result = teardown_storage(cfg, state_dir, console=quiet())
    assert result.clean, result.leftovers
    assert lab.sim.state() == seed


def test_glob_path_names_one_call():
    assert glob_path("/api/protocols/nfs/export-policies/8589934594/rules") == (
        "/api/protocols/nfs/export-policies/*/rules"
    )
    assert glob_path("/api/storage/volumes/d1840df3-b40c-4604-983c-d356e0b8a115") == "/api/storage/volumes/*"
