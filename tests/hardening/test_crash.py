"""labctl killed (SIGKILL) at each step of provision and teardown, then rerun: it converges, and the ledger is
never corrupt, never locked by the dead process, and never loses an object labctl created.

The killed labctl is a real `python -m labctl` process against the in-process simulator. The simulator holds
the Nth step's call (each mutation, and the following of the FlexGroup job) and tells the test, which kills
labctl while the call is in flight, either before the call takes effect ("before": the server then drops it)
or after it took effect but before labctl got the answer ("after").
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from labctl.lab.teardown import teardown_storage
from labctl.sim.app import DropConnection
from tests.hardening.util import MUTATING, distinct_calls, ledger_of, quiet
from tests.ontap.test_faults import summary

STEPS_TIMEOUT = 60.0


class Hold:
    """Wraps the simulator's `/api` handler: the first call matching (method, glob) waits for `release`."""

    def __init__(self, sim: Any, method: str, path: str, after: bool) -> None:
        self.sim, self.method, self.path, self.after = sim, method, path, after
        self.original = sim.app._api
        self.reached = threading.Event()
        self.release = threading.Event()
        self.armed = True
        self.lock = threading.Lock()

    def __call__(self, req: Any) -> Any:
        with self.lock:
            hit = self.armed and req.method == self.method and fnmatch.fnmatchcase(req.path, self.path)
            if hit:
                self.armed = False
        if not hit:
            return self.original(req)
        if self.after:
            response = self.original(req)
            self.reached.set()
            self.release.wait(STEPS_TIMEOUT)
            return response  # to a dead client
        self.reached.set()
        self.release.wait(STEPS_TIMEOUT)
        raise DropConnection()  # the client died before the request was processed


def _kill_at(lab: Any, monkeypatch: Any, args: list[str], state_dir: Path, step: tuple[str, str],
             after: bool) -> None:
    hold = Hold(lab.sim, *step, after=after)
    monkeypatch.setattr(lab.sim.app, "_api", hold)
    env = {**os.environ, "LABCTL_STATE_DIR": str(state_dir), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl", "-i", str(lab.inventory), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        if not hold.reached.wait(STEPS_TIMEOUT):
            out = proc.communicate(timeout=STEPS_TIMEOUT)[0].decode(errors="replace") if proc.poll() else ""
            pytest.fail(f"labctl {' '.join(args)} never reached {step}: {out}")
        proc.kill()
        assert proc.wait(STEPS_TIMEOUT) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        hold.release.set()
        monkeypatch.setattr(lab.sim.app, "_api", hold.original)
    # the ledger as the killed process left it: complete JSON, no half-written temporary file
    ledger_of(state_dir)
    assert not [p.name for p in state_dir.iterdir() if p.name.endswith(".tmp")]


def _steps(calls: list[tuple[str, str]]) -> list[tuple[str, str]]:
    steps = [c for c in calls if c[0] in MUTATING or c == ("GET", "/api/cluster/jobs/*")]
    assert ("GET", "/api/cluster/jobs/*") in steps
    return steps


@pytest.fixture
def reference(lab) -> dict[str, Any]:
    """Seed state, provisioned state + ledger, and the steps of a clean provision and teardown."""
    seed = lab.sim.state()
    assert lab.run("provision", "--only", "storage")[0] == 0
    provisioned = lab.sim.state()
    ledger = (lab.root / "state" / "ledger.json").read_text()
    provision_steps = _steps(distinct_calls(lab.sim.requests()))
    mark = lab.mark()
    assert lab.run("teardown", "--yes", "--only", "storage")[0] == 0
    assert lab.sim.state() == seed
    teardown_steps = _steps(distinct_calls(lab.sim.requests()[mark:]))
    return {"seed": seed, "provisioned": provisioned, "ledger": ledger,
            "provision": provision_steps, "teardown": teardown_steps}


@pytest.mark.slow
def test_killed_provision_converges_on_rerun(lab, monkeypatch, reference):
    steps = reference["provision"]
    assert len(steps) == 5, steps  # PATCH nfs, POST policy, POST rule, POST volume, GET job
    want = summary(reference["provisioned"])
    problems = []
    for n, step in enumerate(steps):
        for after in (False, True):
            where = f"killed {'after' if after else 'before'} {step}"
            lab.sim.reset()
            state_dir = lab.root / f"p-{n}-{after}"
            monkeypatch.setenv("LABCTL_STATE_DIR", str(state_dir))
            _kill_at(lab, monkeypatch, ["provision", "--only", "storage"], state_dir, step, after)
            rc, out, err = lab.run("provision", "--only", "storage")
            assert rc == 0, (where, out, err)
            assert "verified: fg_llm: 16 constituents" in out, where
            assert summary(lab.sim.state()) == want, where
            entries = ledger_of(state_dir)["objects"]
            stale = {k: e for k, e in entries.items() if e["state"] != "done"}
            if stale:
                problems.append((where, {k: (e["state"], e.get("action")) for k, e in stale.items()}))
            assert len([v for v in lab.sim.state()["volumes"].values() if v["name"] == "fg_llm"]) == 1
            # the ledger still owns everything labctl made: teardown returns the cluster to its seed
            result = teardown_storage(lab_cfg(lab), state_dir, console=quiet())
            assert result.clean, (where, result.leftovers)
            assert lab.sim.state() == reference["seed"], where
    assert not problems, problems


@pytest.mark.slow
def test_killed_teardown_converges_on_rerun(lab, monkeypatch, reference):
    steps = reference["teardown"]
    assert [m for m, _ in steps] == ["PATCH", "GET", "DELETE", "DELETE", "PATCH"], steps
    for n, step in enumerate(steps):
        for after in (False, True):
            where = f"killed {'after' if after else 'before'} {step}"
            lab.sim.reset()
            lab.sim.backend.load(reference["provisioned"])
            state_dir = lab.root / f"t-{n}-{after}"
            state_dir.mkdir(mode=0o700)
            (state_dir / "ledger.json").write_text(reference["ledger"])
            monkeypatch.setenv("LABCTL_STATE_DIR", str(state_dir))
            _kill_at(lab, monkeypatch, ["teardown", "--yes", "--only", "storage"], state_dir, step, after)
            rc, out, err = lab.run("teardown", "--yes", "--only", "storage")
            assert rc == 0, (where, out, err)
            assert "leftovers: none" in out, where
            assert lab.sim.state() == reference["seed"], where
            assert ledger_of(state_dir)["objects"] == {}, where


def lab_cfg(lab: Any) -> Any:
    from labctl.config.lab import load_lab_config

    if not hasattr(lab, "_cfg"):
        lab._cfg = load_lab_config(lab.inventory)
    return lab._cfg


def test_killed_after_adding_a_rule_to_an_existing_policy_then_teardown_removes_that_rule(lab, monkeypatch):
    """The rule labctl added to a policy it does not own must be found again on the rerun, or teardown
    would leave it behind (exporting the FlexGroup's SVM to the GPU hosts after labctl is gone)."""
    from netapp_ontap.resources import ExportPolicy

    with lab.sdk():
        ExportPolicy.from_dict({"name": "labctl_fg_llm", "svm": {"name": "llm-lab"}}).post()
    seed = lab.sim.state()
    state_dir = lab.root / "state"
    _kill_at(lab, monkeypatch, ["provision", "--only", "storage"], state_dir,
             ("POST", "/api/protocols/nfs/export-policies/*/rules"), after=True)
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 0, out + err
    rule = ledger_of(state_dir)["objects"]["export_rule:llm-lab/labctl_fg_llm"]
    assert rule["state"] == "done" and rule.get("index") is not None, rule
    rc, out, err = lab.run("teardown", "--yes", "--only", "storage")
    assert rc == 0, out + err
    assert lab.sim.state() == seed  # the user's policy is back to no rules
