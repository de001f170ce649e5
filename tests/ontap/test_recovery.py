"""A run interrupted between a REST call and its ledger record is picked up, never lost or repeated."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from labctl.state import INTENT, Ledger


def test_a_crash_after_the_create_is_adopted_on_the_next_run(lab, monkeypatch):
    seed = lab.sim.state()
    real_done = Ledger.done

    def crash(self, key, **ids):
        if key.startswith("volume:"):
            raise KeyboardInterrupt  # the process dies right after ONTAP created the FlexGroup
        real_done(self, key, **ids)

    monkeypatch.setattr(Ledger, "done", crash)
    rc, _, _ = lab.run("provision", "--only", "storage")
    assert rc == 130
    entry = json.loads((lab.root / "state" / "ledger.json").read_text())["objects"]["volume:llm-lab/fg_llm"]
    assert entry["state"] == INTENT and entry["created"] is True
    monkeypatch.setattr(Ledger, "done", real_done)
    mark = lab.mark()
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 0, err
    assert lab.mutations(mark) == []  # adopted by its labctl tag, not created again
    assert "verified: fg_llm: 16 constituents" in out
    assert lab.run("teardown", "--yes", "--only", "storage")[0] == 0
    assert lab.sim.state() == seed


def test_a_crash_before_the_create_leaves_nothing_to_undo(lab, monkeypatch):
    seed = lab.sim.state()
    real_intent = Ledger.intent

    def crash(self, key, **kw):
        real_intent(self, key, **kw)
        if key.startswith("volume:"):
            raise KeyboardInterrupt  # recorded the intent, died before the POST

    monkeypatch.setattr(Ledger, "intent", crash)
    assert lab.run("provision", "--only", "storage")[0] == 130
    monkeypatch.setattr(Ledger, "intent", real_intent)
    rc, out, err = lab.run("teardown", "--yes", "--only", "storage")
    assert rc == 0, out + err
    assert lab.sim.state() == seed
    ledger = json.loads((lab.root / "state" / "ledger.json").read_text())
    assert ledger["objects"] == {}


@pytest.mark.parametrize("mode", [{"mode": "polls", "polls": 2}, {"mode": "seconds", "seconds": 0.3}])
def test_slow_jobs_are_followed_to_the_end(lab, mode):
    lab.sim.set_job_mode(**mode)
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 0, err
    assert "verified: fg_llm: 16 constituents" in out
    assert lab.run("teardown", "--yes", "--only", "storage")[0] == 0


def _finish_jobs_once_a_create_meets_the_running_one(sim: Any, since: int) -> threading.Thread:
    """Hold every job until a second FlexGroup POST is refused (409: the first create still runs), then
    let the jobs finish: the second run meets the first run's job whatever the machine's speed."""

    def release() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
            r["method"] == "POST" and r["path"] == "/api/storage/volumes" and r["status"] == 409
            for r in sim.requests()[since:]
        ):
            time.sleep(0.05)
        sim.set_job_mode("seconds", seconds=0)

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    return thread


def test_a_job_that_outlives_the_timeout_is_reported_then_picked_up(lab):
    lab.sim.set_job_mode("seconds", seconds=3600)  # held until the second run has met it
    lab.configure(labctl_ontap_job_timeout=1)
    rc, _, err = lab.run("provision", "--only", "storage")
    assert rc == 1
    assert "cannot create FlexGroup fg_llm" in err and "did not finish in time" in err
    assert "labctl_ontap_job_timeout" in err and "Traceback" not in err
    lab.configure(labctl_ontap_job_timeout=60)
    release = _finish_jobs_once_a_create_meets_the_running_one(lab.sim, lab.mark())
    rc, out, err = lab.run("provision", "--only", "storage")  # waits for the first run's job, adopts it
    release.join(timeout=5)
    assert rc == 0, err
    assert "verified: fg_llm: 16 constituents" in out
    volume_posts = [
        r for r in lab.sim.requests() if r["method"] == "POST" and r["path"] == "/api/storage/volumes"
    ]
    assert [r["status"] for r in volume_posts] == [202, 409]
