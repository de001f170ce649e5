"""Issue #20's done-when, on 2 simulated hosts: `labctl run` polls ONTAP's counters into the bundle and the
report's storage side agrees with the clients (sim up --hosts 2, provision, the sim experiment, report)."""

from __future__ import annotations

import json

import pytest

from labctl.demo import run_demo
from tests.e2e.test_demo_e2e import short_experiment
from tests.hosts.simlab import fuse_reason, skip_reason

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def storage_run(tmp_path_factory):
    """The simulated lab's reference experiment, shortened (~40 s, 3 checkpoints), ONTAP polled each 1 s."""
    reason = skip_reason() or fuse_reason()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("storage")
    experiment = short_experiment(base / "experiment.yaml", ontap_interval_s=1)
    result = run_demo(base / "lab", hosts=2, experiment=experiment)  # sim down at the end
    return result, json.loads((result.bundle / "summary.json").read_text())


def test_the_run_polled_ontap_into_its_bundle(storage_run):
    result, summary = storage_run
    manifest = json.loads((result.bundle / "manifest.json").read_text())
    listed = {f["path"] for f in manifest["files"]}
    assert {"raw/_ontap/stats.jsonl", "raw/_ontap/monitors.json"} <= listed
    assert manifest["complete"], manifest.get("missing")
    mon = json.loads((result.bundle / "raw" / "_ontap" / "monitors.json").read_text())["monitors"][0]
    assert mon["status"] == "stopped" and mon["polls"] >= 10 and mon["failed_polls"] == 0, mon
    o = summary["ontap"]
    assert o["available"] and len(o["constituents"]) == 16 and len(o["nodes"]) == 2
    assert {"gpu1", "gpu2"} == set(summary["run"]["hosts"])  # raw/_ontap/ is not taken for a host
    page = result.report.read_text()
    assert "Storage side (ONTAP)" in page and "Figure S2." in page and "Per constituent" in page


def test_storage_side_agrees_with_the_clients(storage_run):
    _, summary = storage_run
    o, client = summary["ontap"], summary["nfs"]["write_bytes"]
    assert client > 0
    assert abs(o["write_bytes"] - client) <= 0.15 * client, o["agreement"]
    written = sum(c["write_bytes"] for c in o["constituents"])
    assert len(o["constituents"]) == 16 and abs(written - o["write_bytes"]) <= 0.05 * o["write_bytes"]
    # which node takes the traffic depends on where the run's files hash (their paths hold the run id), so
    # both nodes are listed and their split adds up, whichever node that is
    by_node = sum(n["write_bytes"] for n in o["nodes"])
    assert abs(by_node - o["write_bytes"]) <= 0.05 * o["write_bytes"], o["nodes"]
    assert len(o["checkpoints"]) == 3 and all(ck["top_constituent"] for ck in o["checkpoints"])
    assert any("checkpoints landed on" in f for f in o["findings"])
