"""`labctl run` end to end on the simulated lab (2 hosts): bundle, checksums, manifest, bpftrace totals,
and a controller that dies mid-run followed by `labctl attach`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from labctl.experiment.manifest import verify

pytestmark = [pytest.mark.root, pytest.mark.slow]
RAW = {"dmon.log", "nfsiostat.log", "mountstats.log", "train.log", "clock.json", "monitors.json"}
CKPT = 12_000_000


@pytest.fixture
def lab(mounted_lab):
    """The worker's shared simulated lab, FlexGroup mounted (tests/conftest.py)."""
    return mounted_lab


def experiment(tmp_path: Path, name: str, steps: int, compute: float) -> Path:
    doc = {
        "name": name,
        "trainer": "emulate",
        "training": {"epochs": 2},
        "monitors": {"dmon_interval_s": 1, "lead_s": 1.5, "tail_s": 1.5},
        "emulate": {
            "steps_per_epoch": steps,
            "step_compute_s": compute,
            "startup_s": 1.0,
            "validation_s": 1.0,
            "checkpoint_bytes": CKPT,
            "dataset_bytes": 8_000_000,
            "read_bytes_per_step": 1 << 20,
        },
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def labctl(lab, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labctl", "-i", lab["inventory"], *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def bundle_of(runs: Path) -> Path:
    (bundle,) = [p for p in runs.iterdir() if (p / "manifest.json").exists()]
    return bundle


def check_bundle(bundle: Path, lab: dict) -> dict:
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["complete"] and m["success"] and m["state"] == "finished", m.get("errors")
    assert verify(bundle, m) == []
    for key in ("experiment", "rendered_config", "versions", "mount_options", "ontap", "times", "files"):
        assert m[key], key
    assert {"labctl", "llmstudio", "ontap", "hosts"} <= set(m["versions"])
    assert "available" in m["ontap"]
    assert m["times"]["started"] < m["times"]["ended"] <= m["times"]["collected"]
    names = {h["name"] for h in lab["hosts"]}
    assert set(m["rendered_config"]) == names and set(m["mount_options"]) == names
    for host in names:
        raw = bundle / "raw" / host
        present = {p.name for p in raw.iterdir()}
        assert present >= RAW, present
        assert "nconnect=16" in m["mount_options"][host]["proc_mounts"][0]["options"]
        assert m["mount_options"][host]["xprt_count"] == 16
        hv = m["versions"]["hosts"][host]
        assert hv["kernel"] and hv["gpu_driver"]
        clock = json.loads((raw / "clock.json").read_text())
        assert abs(clock["offset_s"]) < 0.5 and len(clock["checks"]) == 2
        train = (raw / "train.log").read_text()
        assert "Training Epoch: 2 / 2" in train
        assert train.count("Saving best model checkpoint") == 2
        out = Path(lab["ontap"]["data_dir"]) / "llm-lab" / "fg_llm" / "labctl" / m["run_id"] / host
        assert (out / "checkpoint.pth").stat().st_size == CKPT  # the burst landed on the FlexGroup
        assert json.loads((out / "flags.json").read_text())["status"] == "finished"
        ms = (raw / "mountstats.log").read_text().split("#ts ")[1:]
        written = [
            int(line.split()[6])
            for snap in ms
            for line in snap.splitlines()
            if line.strip().startswith("bytes:")
        ]
        assert written[-1] - written[0] >= 2 * CKPT  # mountstats: the source of truth for bytes
    return m


def bpftrace_totals(raw: Path, name: str) -> dict[str, int]:
    """Bytes per process name summed over every per-second record of map `name`."""
    totals: dict[str, int] = {}
    for line in (raw / "bpftrace.jsonl").read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            if rec.get("type") == "map" and name in rec["data"]:
                for comm, value in rec["data"][name].items():
                    totals[comm] = totals.get(comm, 0) + value
    return totals


def test_run_ends_with_a_complete_bundle(lab, tmp_path):
    runs = tmp_path / "runs"
    done = labctl(
        lab, "run", str(experiment(tmp_path, "tiny", steps=8, compute=0.35)), "--runs-dir", str(runs)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    bundle = bundle_of(runs)
    check_bundle(bundle, lab)
    for host in lab["hosts"]:
        raw = bundle / "raw" / host["name"]
        monitors = {x["name"]: x for x in json.loads((raw / "monitors.json").read_text())["monitors"]}
        assert monitors["dmon"]["status"] == "stopped" and monitors["mountstats"]["status"] == "stopped"
        dmon = [
            line.split() for line in (raw / "dmon.log").read_text().splitlines() if line and line[0] != "#"
        ]
        sm = [int(r[6]) for r in dmon if len(r) > 6 and r[2] == "0" and r[6].isdigit()]
        assert max(sm) >= 50 and min(sm) == 0  # busy while computing, idle before training
        bpf = monitors["bpftrace"]
        if (
            os.geteuid() == 0
            and shutil.which("bpftrace")
            and Path("/sys/kernel/tracing/events/syscalls").exists()
        ):
            assert bpf["status"] == "stopped", bpf
            wrote = [
                ln for ln in (raw / "train.log").read_text().splitlines() if "labctl-emulator: wrote" in ln
            ]
            emulator_bytes = int(wrote[0].split("wrote ")[1].split()[0])
            assert (
                abs(sum(bpftrace_totals(raw, "@write_bytes").values()) - emulator_bytes)
                <= 0.02 * emulator_bytes
            )
            assert bpftrace_totals(raw, "@read_bytes").get("pt_data_worker", 0) > 0  # data-loader workers
            assert json.loads((raw / "bpftrace.meta.json").read_text())["realtime_minus_boottime"] > 0
        else:
            assert bpf["status"] == "skipped" and bpf["reason"]
    compact_records_read_as_the_verbatim_files(bundle, tmp_path / "verbatim")


COMPACT = {"dmon.f64", "mountstats.f64", "nfsiostat.f64", "bpftrace.f64", "bpftrace.totals.json"}


def compact_records_read_as_the_verbatim_files(bundle: Path, copy: Path) -> None:
    """The agent's compact records of this run are what the report reads, and give the series its verbatim
    files give."""
    import numpy as np

    from labctl.report.analyse import analyse

    compact = analyse(bundle, write=False)
    read = {Path(p.path).name for p in compact.run.parse}
    assert {"dmon.f64", "mountstats.f64", "nfsiostat.f64"} <= read
    shutil.copytree(bundle, copy)
    for f in copy.glob("raw/*/*"):
        if f.name in COMPACT:
            f.unlink()
    verbatim = analyse(copy, write=False)
    assert not {Path(p.path).name for p in verbatim.run.parse} & COMPACT
    assert sorted(compact.binned) == sorted(verbatim.binned)
    for key, b in verbatim.binned.items():
        assert compact.binned[key].secs.tolist() == b.secs.tolist(), key
        np.testing.assert_allclose(compact.binned[key].values, b.values, rtol=1e-9, err_msg=str(key))


def test_sqlite_works_on_the_simulated_nfs_mount(lab):
    """LLM Studio keeps its charts in sqlite (charts.db) in its output directory on the FlexGroup: a file
    created read-write on the simulated NFS mount reads back through the same handle, as on NFS."""
    import shlex

    from labctl.experiment.hosts import resolve_hosts
    from labctl.experiment.remote import Remote

    script = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('create table t(x)'); "
              "c.execute('insert into t values (42)'); c.commit(); "
              "print(c.execute('select x from t').fetchone()[0])")
    target = resolve_hosts(Path(lab["inventory"]), "gpu_hosts")[0]
    r = Remote(target)
    try:
        path = "/mnt/fg_llm/sqlite-check.db"
        python = shlex.quote(target.python)
        out = r.check(f"rm -f {path}; {python} -c {shlex.quote(script)} {path}; rm -f {path}")
    finally:
        r.close()
    assert out.strip() == "42"


def test_controller_lost_mid_run_then_attach_completes(lab, tmp_path):
    runs = tmp_path / "runs"
    exp = experiment(tmp_path, "cut", steps=12, compute=0.6)
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl", "-i", lab["inventory"], "run", str(exp), "--runs-dir", str(runs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        manifests = list(runs.glob("*/manifest.json")) if runs.exists() else []
        if manifests and json.loads(manifests[0].read_text())["state"] == "running":
            break
        time.sleep(0.2)
    else:
        pytest.fail("the run did not start")
    run_id = manifests[0].parent.name
    logs = [Path(h["root"]) / "var-tmp" / "labctl" / run_id / h["name"] / "raw" / "train.log"
            for h in lab["hosts"]]
    while not all(log.exists() and "train loss" in log.read_text() for log in logs):  # each host trains
        assert time.time() < deadline + 60 and proc.poll() is None, "no training step was logged"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the controller and its SSH connections die mid-training
    proc.wait()
    bundle = bundle_of(runs)
    assert not json.loads((bundle / "manifest.json").read_text())["complete"]
    time.sleep(2)
    done = labctl(lab, "attach", str(bundle))
    assert done.returncode == 0, done.stdout + done.stderr
    m = check_bundle(bundle, lab)
    for host in m["hosts"]:
        assert host["trainer"]["exit_status"] == 0 and host["state"] == "finished"
