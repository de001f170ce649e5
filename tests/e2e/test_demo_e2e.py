"""The whole chain on 2 simulated hosts, as `labctl demo` runs it: provision → run → report → teardown.

Afterwards the simulator's state equals its seed and the hosts are as they were before provisioning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import yaml

from labctl.cli import main
from labctl.config.experiment import load_experiment
from labctl.demo import run_demo
from labctl.experiment.modelsize import emulated_checkpoint_bytes
from tests.hosts.simlab import fuse_reason, skip_reason

pytestmark = [pytest.mark.root, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def short_experiment(path: Path, **monitors: object) -> Path:
    """The simulated lab's reference experiment, shortened to ~40 s with the same three checkpoints,
    each ~12 s apart so that every save is its own write burst; `monitors` override monitor settings."""
    exp = yaml.safe_load((REPO / "templates" / "experiment.sim.yaml").read_text())
    exp["emulate"].update(steps_per_epoch=10, step_compute_s=1.0, startup_s=1.0, validation_s=1.0,
                          checkpoint_scale=0.004)
    exp["monitors"].update(lead_s=1, tail_s=2, **monitors)
    path.write_text(yaml.safe_dump(exp))
    return path


def _sim(lab: dict, method: str, path: str) -> dict:
    ontap = lab["ontap"]
    session = requests.Session()
    session.trust_env = False  # the machine's REQUESTS_CA_BUNDLE must not replace the simulator's CA
    password = Path(ontap["password_file"]).read_text().splitlines()[0]
    resp = session.request(method, ontap["url"] + path, auth=(ontap["username"], password),
                           verify=ontap["ca_file"], timeout=30)
    resp.raise_for_status()
    return resp.json() if resp.content else {}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    reason = skip_reason() or fuse_reason()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("e2e")
    experiment = short_experiment(base / "experiment.yaml")
    result = run_demo(base / "lab", hosts=2, keep=True, experiment=experiment)
    lab = json.loads((base / "lab" / "lab.json").read_text())
    try:
        yield result, lab
    finally:
        assert main(["sim", "down", "--dir", str(base / "lab")]) == 0


def test_the_run_produced_a_complete_bundle_and_report(demo):
    result, _ = demo
    manifest = json.loads((result.bundle / "manifest.json").read_text())
    assert manifest["success"] and manifest["complete"]
    assert {h["name"] for h in manifest["hosts"]} == {"gpu1", "gpu2"}
    html = result.report.read_text()
    assert "<img" in html and "data:image/png;base64," in html
    summary = json.loads((result.bundle / "summary.json").read_text())
    assert summary == result.summary
    # each host saves after each of the 3 epochs; saves of both hosts at once make one burst
    assert len(summary["checkpoints"]) == 3
    written = sum(c["bytes"] for c in summary["checkpoints"])
    experiment = load_experiment(result.lab_dir.parent / "experiment.yaml")
    saved = 2 * 3 * emulated_checkpoint_bytes(experiment)  # 2 hosts × 3 saves
    assert abs(written - saved) / saved < 0.05
    assert summary["nfs"]["write_bytes"] > 0
    util = summary["gpu"]["util_mean_pct"]
    assert util is not None and 30 < util <= 100


def test_the_cluster_is_back_to_its_seed(demo):
    _, lab = demo
    after = _sim(lab, "GET", "/_sim/state")
    _sim(lab, "POST", "/_sim/reset")
    seeded = _sim(lab, "GET", "/_sim/state")
    assert after == seeded
    volumes = _sim(lab, "GET", "/api/storage/volumes?fields=name")["records"]
    assert "fg_llm" not in {v["name"] for v in volumes}


def test_the_hosts_are_back_to_their_seed(demo):
    _, lab = demo
    for host in lab["hosts"]:
        root = Path(host["root"])
        mounts = root / "proc" / "mounts"
        assert not mounts.exists() or " /mnt/fg_llm " not in mounts.read_text()
        assert not (root / "mnt" / "fg_llm").exists()
        assert (root / "etc" / "fstab").read_text() == Path("/etc/fstab").read_text()
