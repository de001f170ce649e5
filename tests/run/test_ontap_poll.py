"""The controller's ONTAP poller against the real simulator: records through labctl's TLS-verified session,
a slow or failing cluster recorded while polling goes on, a missing privilege (403, code 6) recorded as
skipped."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import certifi
import pytest
import yaml

from labctl.config.experiment import load_experiment
from labctl.errors import ConfigError
from labctl.experiment.ontap_poll import OntapPoller, start_polling
from tests.ontap.conftest import Lab, write_inventory

KINDS = {"flexgroup", "constituents", "nodes", "aggregates", "lifs"}


@pytest.fixture
def lab(ontap_sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> Lab:
    """The simulator with the lab's storage provisioned (fg_llm and its 16 constituents)."""
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("LABCTL_INVENTORY", raising=False)
    ontap_sim.set_job_mode("immediate")
    lab = Lab(ontap_sim, tmp_path, write_inventory(tmp_path, ontap_sim), capsys)
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 0, out + err
    return lab


def _lines(bundle: Path) -> list[dict[str, Any]]:
    path = bundle / "raw" / "_ontap" / "stats.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _monitor(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "raw" / "_ontap" / "monitors.json").read_text())["monitors"][0]


def _poll_until(bundle: Path, predicate, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = _lines(bundle)
        if predicate(lines):
            return lines
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout_s} s: {_lines(bundle)[-2:]}")


def _poll_1s_until(lab: Lab, bundle: Path, predicate) -> list[dict[str, Any]]:
    """Poll `lab`'s cluster into `bundle` every second until `predicate` holds; the lines it held for."""
    poller = OntapPoller(bundle, lab.inventory, interval_s=1.0)
    poller.start()
    try:
        return _poll_until(bundle, predicate)
    finally:
        poller.stop()


def test_poller_appends_raw_counters_with_ontaps_timestamps(lab: Lab, tmp_path: Path) -> None:
    bundle = tmp_path / "run"
    poller = start_polling(bundle, {"inventory": str(lab.inventory),
                                    "experiment": {"monitors": {"ontap_interval_s": 1}}})
    assert poller is not None
    try:
        _poll_until(bundle, lambda lines: len(lines) >= 2)
    finally:
        poller.stop()
    lines = _lines(bundle)
    assert len(lines) >= 3  # two ticks and the last poll at stop
    assert [ln["poll"] for ln in lines] == list(range(1, len(lines) + 1))
    for line in lines:
        assert line["errors"] == {}
        assert set(line["records"]) == KINDS
    recs = lines[-1]["records"]
    (fg,) = recs["flexgroup"]
    assert fg["name"] == "fg_llm"
    for key in ("iops_raw", "throughput_raw", "latency_raw"):
        assert set(fg["statistics"][key]) >= {"read", "write", "other", "total"}
    assert fg["statistics"]["timestamp"] and "metric" in fg
    names = sorted(r["name"] for r in recs["constituents"])
    assert names == [f"fg_llm__{i:04d}" for i in range(1, 17)]
    assert all(r["aggregates"] and "statistics" in r for r in recs["constituents"])
    assert len(recs["nodes"]) == 2 and all("node" in a for a in recs["aggregates"])
    assert all("location" in r for r in recs["lifs"])
    text = (bundle / "raw" / "_ontap" / "stats.jsonl").read_text()
    assert lab.sim.password not in text and "_links" not in text
    mon = _monitor(bundle)
    assert mon["status"] == "stopped" and mon["polls"] == len(lines) and mon["failed_polls"] == 0
    asked = {(r["path"], r.get("query") and "is_constituent" in str(r["query"])) for r in lab.sim.requests()
             if r["method"] == "GET" and r["path"] == "/api/storage/volumes"}
    assert asked == {("/api/storage/volumes", False), ("/api/storage/volumes", True)}


def test_a_slow_or_failing_cluster_is_recorded_and_polling_goes_on(lab: Lab, tmp_path: Path) -> None:
    lab.sim.add_fault(action="delay", delay=3.0, method="GET", path="/api/cluster/nodes", count=1)
    lab.sim.add_fault(action="error", status=503, code="0", message="Injected fault", method="GET",
                      path="/api/storage/aggregates", count=1)
    bundle = tmp_path / "run"
    lines = _poll_1s_until(lab, bundle, lambda ls: any(not ln["errors"] for ln in ls[1:]))
    first = lines[0]
    assert first["errors"]["nodes"] == "no answer within 1 s"
    assert "HTTP 503" in first["errors"]["aggregates"]
    assert {"flexgroup", "constituents", "lifs"} <= set(first["records"])
    assert set(lines[-1]["records"]) == KINDS
    mon = _monitor(bundle)
    assert mon["status"] == "stopped" and mon["failed_polls"] == 1 and mon["polls"] >= 2
    assert any("no answer within 1 s" in e for e in mon["errors"])


def test_a_missing_privilege_is_recorded_as_skipped(lab: Lab, tmp_path: Path) -> None:
    lab.sim.add_fault(action="error", status=403, code="6", message="not authorized for that command",
                      method="GET", path="/api/cluster/nodes", count=None)
    bundle = tmp_path / "run"
    _poll_1s_until(lab, bundle, lambda ls: len(ls) >= 2)
    lines = _lines(bundle)
    mon = _monitor(bundle)
    assert mon["status"] == "stopped" and mon["failed_polls"] == 0
    assert "not authorized for that command" in mon["skipped"]["nodes"]
    assert "code 6" in mon["skipped"]["nodes"]
    assert all("nodes" not in ln["records"] for ln in lines)
    assert set(lines[-1]["records"]) == KINDS - {"nodes"}
    refused = [r for r in lab.sim.requests() if r["path"] == "/api/cluster/nodes" and r["status"] == 403]
    assert len(refused) == 1  # asked once, then skipped for the rest of the run


def test_every_query_refused_skips_the_monitor(lab: Lab, tmp_path: Path) -> None:
    lab.sim.add_fault(action="error", status=403, code="6", message="not authorized for that command",
                      method="GET", path="/api/*", count=None)
    bundle = tmp_path / "run"
    poller = OntapPoller(bundle, lab.inventory, interval_s=1.0)
    poller.start()
    poller.stop()
    mon = _monitor(bundle)
    assert mon["status"] == "skipped" and "refused every counter query" in mon["reason"]
    assert len(_lines(bundle)) == 1


def test_tls_is_verified(lab: Lab, tmp_path: Path) -> None:
    write_inventory(lab.root, lab.sim, labctl_ontap_ca_file=certifi.where())
    bundle = tmp_path / "run"
    _poll_1s_until(lab, bundle, lambda ls: len(ls) >= 1)
    line = _lines(bundle)[0]
    assert line["records"] == {}
    assert all(text.startswith("TLS verification failed") for text in line["errors"].values())
    assert set(line["errors"]) == KINDS


def test_following_again_continues_the_record(lab: Lab, tmp_path: Path) -> None:
    bundle = tmp_path / "run"
    first = OntapPoller(bundle, lab.inventory, interval_s=1.0)
    first.start()
    first.stop()
    polls = _monitor(bundle)["polls"]
    again = OntapPoller(bundle, lab.inventory, interval_s=1.0)
    again.start()
    again.stop()
    mon = _monitor(bundle)
    lines = _lines(bundle)
    assert mon["polls"] == len(lines) > polls and mon["followed"] == 2
    assert [ln["poll"] for ln in lines] == list(range(1, len(lines) + 1))  # numbered on, not from 1 again


@pytest.mark.parametrize("value", [0, 0.5, 301, "often"])
def test_the_interval_is_validated(tmp_path: Path, value: object) -> None:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump({"monitors": {"ontap_interval_s": value}}))
    with pytest.raises(ConfigError, match=r"monitors\.ontap_interval_s") as err:
        load_experiment(path)
    assert err.value.where == str(path)
    path.write_text("{}")
    assert load_experiment(path).monitors.ontap_interval_s == 5.0
