"""The ledger: versioned JSON, atomic owner-only writes, a lock, intent before / result after."""

from __future__ import annotations

import json

import pytest

from labctl.errors import StateError
from labctl.state import DONE, INTENT, LEDGER_VERSION, Ledger, read_ledger


def test_intent_then_done_is_written_at_each_step(tmp_path):
    state = tmp_path / "state"
    with Ledger.open(state) as ledger:
        ledger.intent("volume:svm/fg", kind="volume", action="create", name="fg", desired={"size": 1})
        on_disk = read_ledger(state)
        assert on_disk["objects"]["volume:svm/fg"]["state"] == INTENT  # a crash now leaves a trace
        assert on_disk["objects"]["volume:svm/fg"]["created"] is True
        ledger.done("volume:svm/fg", uuid="u-1")
    data = read_ledger(state)
    assert data["version"] == LEDGER_VERSION
    entry = data["objects"]["volume:svm/fg"]
    assert entry["state"] == DONE and entry["uuid"] == "u-1" and entry["desired"] == {"size": 1}
    assert (state / "ledger.json").stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in state.iterdir() if p.name.endswith(".tmp")] == []


def test_the_first_prior_value_is_the_one_kept(tmp_path):
    with Ledger.open(tmp_path) as ledger:
        ledger.intent("nfs:s", kind="nfs_service", action="modify", name="s", prior={"size": 65536})
        ledger.done("nfs:s")
        ledger.intent(
            "nfs:s", kind="nfs_service", action="modify", name="s", prior={"size": 1048576, "v41": False}
        )
        ledger.done("nfs:s")
        assert ledger.get("nfs:s")["prior"] == {"size": 65536, "v41": False}
        assert ledger.get("nfs:s")["created"] is False
        ledger.forget("nfs:s")
        assert ledger.get("nfs:s") is None


def test_a_second_run_is_locked_out(tmp_path):
    with (
        Ledger.open(tmp_path),
        pytest.raises(StateError, match="another labctl run holds the lab's lock"),
        Ledger.open(tmp_path),
    ):
        pass
    with Ledger.open(tmp_path):  # released
        pass


def test_lab_id_is_stable_once_written(tmp_path):
    with Ledger.open(tmp_path) as ledger:
        ledger.set_meta(nfs_server="10.0.0.21")
        lab_id = ledger.lab_id
    with Ledger.open(tmp_path) as ledger:
        assert ledger.lab_id == lab_id and ledger.meta["nfs_server"] == "10.0.0.21"


def test_unreadable_or_newer_ledgers_are_refused(tmp_path):
    (tmp_path / "ledger.json").write_text("{not json")
    with pytest.raises(StateError, match="not valid labctl JSON"):
        read_ledger(tmp_path)
    (tmp_path / "ledger.json").write_text(json.dumps({"version": LEDGER_VERSION + 1, "objects": {}}))
    with pytest.raises(StateError, match="upgrade labctl"):
        read_ledger(tmp_path)
