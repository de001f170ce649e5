"""The run bundle's JSON files as versioned dataclasses (labctl/formats/bundle.py): round trips, refusal of
versions and keys this labctl does not know, and every such file a real run writes loads through them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.errors import StateError
from labctl.formats.bundle import SCHEMA_VERSION, Manifest, Monitors, Spec, Status

FIXTURE = Path(__file__).parents[1] / "report" / "fixtures" / "simlab_run"
SAMPLES = [
    Spec(run_id="r1", host="gpu1", rundir="/var/tmp/labctl/r1/gpu1", mount="/mnt/fg_llm", gpus=8,
         monitors={"dmon": True, "dmon_interval_s": 1, "lead_s": 2.0}, bpftrace={"program": "io.bt"},
         trainer={"kind": "emulate", "argv": ["python3", "agent.pyz", "emulate", "e.json"]}),
    Status(run_id="r1", host="gpu1", state="training", agent_pid=42, started_at=1.5, trainer={"pid": 43},
           progress={"epoch": 1, "epochs": 2}, monitors={"dmon": "running"}, gpu_pct=87.5,
           nfs_mbps={"read": 1.5, "write": 0.0, "at": 2.0}),
    Monitors(host="gpu1", run_id="r1", monitors=[{"name": "dmon", "status": "stopped", "errors": []}],
             trainer={"kind": "emulate"}),
    Manifest(run_id="r1", state="finished", complete=True, success=True, hosts=[{"name": "gpu1"}],
             times={"created": 1.0}, files=[{"path": "raw/gpu1/dmon.log", "size": 3, "sha256": "ab"}],
             collections=[{"at": 2.0, "complete": True, "errors": []}]),
]


@pytest.mark.parametrize("doc", SAMPLES, ids=lambda d: type(d).__name__)
def test_round_trip(doc, tmp_path):
    text = doc.to_json()
    assert json.loads(text)["schema_version"] == SCHEMA_VERSION
    assert type(doc).from_json(text) == doc
    path = tmp_path / doc.FILE
    doc.save(path)
    assert type(doc).load(path) == doc
    assert [p.name for p in tmp_path.iterdir()] == [doc.FILE]  # the temporary file was renamed away


@pytest.mark.parametrize("cls", [Spec, Status, Monitors, Manifest])
@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, 0, "1", True])
def test_unknown_schema_version_is_refused_naming_the_file(cls, version, tmp_path):
    path = tmp_path / cls.FILE
    path.write_text(json.dumps({**cls().to_dict(), "schema_version": version}))
    with pytest.raises(StateError) as err:
        cls.load(path)
    assert err.value.where == str(path)
    assert f"schema_version {version!r}" in err.value.message and "upgrade labctl" in err.value.fix


def test_unknown_key_and_non_object_are_refused(tmp_path):
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"schema_version": 1, "state": "training", "gpu_percent": 3}))
    with pytest.raises(StateError, match="gpu_percent"):
        Status.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(StateError, match="not a JSON object"):
        Status.load(path)
    path.write_text("{")
    with pytest.raises(StateError, match="not JSON"):
        Status.load(path)


def test_files_written_before_schema_versions_read_as_version_1():
    manifest = Manifest.load(FIXTURE / "manifest.json")  # written by labctl with `"version": 1`
    assert manifest.schema_version == 1 and manifest.complete and "version" not in manifest.to_dict()
    for host in ("gpu1", "gpu2"):
        assert {m["name"] for m in Monitors.load(FIXTURE / "raw" / host / "monitors.json").monitors} >= {
            "dmon", "mountstats"}


def test_report_refuses_a_newer_manifest_in_one_line(tmp_path):
    import shutil

    bundle = tmp_path / "run"
    shutil.copytree(FIXTURE, bundle)
    doc = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps({**doc, "schema_version": SCHEMA_VERSION + 1}))
    done = subprocess.run([sys.executable, "-m", "labctl", "report", str(bundle)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"schema_version {SCHEMA_VERSION + 1}" in done.stdout + done.stderr
    assert str(bundle / "manifest.json") in (done.stdout + done.stderr).replace("\n", "")


@pytest.mark.root
@pytest.mark.slow
def test_every_file_a_real_run_writes_loads(tmp_path_factory, tmp_path):
    """The emulated trainer on the simulated lab (one host): the bundle's manifest and monitors.json, and
    the host's spec.json and status.json, each load through its dataclass at the current version."""
    from labctl.experiment.follow import target_of
    from labctl.experiment.remote import Remote
    from tests.hosts.simlab import start_lab
    from tests.run.simprep import provision_and_mount
    from tests.run.test_sim_run import bundle_of, experiment, labctl

    for lab in start_lab(tmp_path_factory.mktemp("fileslab"), hosts=1, mounts=True):
        provision_and_mount(lab)
        runs = tmp_path / "runs"
        done = labctl(lab, "run", str(experiment(tmp_path, "files", steps=3, compute=0.2)),
                      "--runs-dir", str(runs))
        assert done.returncode == 0, done.stdout + done.stderr
        bundle = bundle_of(runs)
        manifest = Manifest.load(bundle / "manifest.json")
        assert manifest.schema_version == SCHEMA_VERSION and manifest.complete and manifest.success
        (host,) = manifest.hosts
        monitors = Monitors.load(bundle / "raw" / host["name"] / "monitors.json")
        assert monitors.schema_version == SCHEMA_VERSION and monitors.host == host["name"]
        remote = Remote(target_of(host))  # the host's run directory is in its own mount namespace
        try:
            read = {name: remote.check(f"cat {host['rundir']}/{name}")
                    for name in ("spec.json", "status.json")}
        finally:
            remote.close()
        spec = Spec.from_json(read["spec.json"])
        assert spec.rundir == host["rundir"] and spec.trainer["kind"] == "emulate"
        status = Status.from_json(read["status.json"])
        assert status.state == "finished" and status.trainer["finished_flag"] is True
