"""`labctl run` when a host goes down mid-run (simulated lab, root): the other host completes and is
collected, the lost host is reported by name, its training goes on and its files are kept on it; the
password of the lab is in no file of the bundle or the report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labctl.experiment.manifest import verify
from labctl.testlab.sshhost import processes_in_namespace
from tests.hardening.util import emulated_experiment, wait_for
from tests.hosts.simlab import start_lab
from tests.run.simprep import provision_and_mount

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    for data in start_lab(tmp_path_factory.mktemp("runsafety"), hosts=2, mounts=True):
        provision_and_mount(data)
        yield data


def _experiment(path: Path) -> Path:
    return emulated_experiment(path, "hostdown", epochs=2, steps=10, compute_s=0.6, data_bytes=4_000_000,
                               read_per_step=1 << 18)


def _cut_ssh(host: dict) -> None:
    """The host drops off the network: every sshd of it (listener and sessions) dies; nothing else does."""
    for pid in processes_in_namespace(host["mount_ns"]):
        try:
            if os.readlink(f"/proc/{pid}/exe") == "/usr/sbin/sshd":
                os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


def _start(lab: dict, runs: Path, experiment: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "labctl", "-i", lab["inventory"], "run", str(experiment),
           "--runs-dir", str(runs)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, start_new_session=True)


def _manifest_state(runs: Path) -> str | None:
    for path in runs.glob("*/manifest.json"):
        try:
            return json.loads(path.read_text()).get("state")
        except ValueError:
            return None
    return None


def _ctrl_c(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole foreground group
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_ctrl_c_while_starting_leaves_no_training_running(lab, tmp_path):
    runs = tmp_path / "runs"
    proc = _start(lab, runs, _experiment(tmp_path / "e.yaml"))
    wait_for(lambda: _manifest_state(runs) is not None or proc.poll() is not None, 60)
    (bundle,) = runs.iterdir()
    out, err = _ctrl_c(proc)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in out + err and "no training is left running" in err, err
    wait_for(lambda: _run_processes(lab, bundle.name) == [], 15)  # no agent, monitor or trainer of it is left
    assert list(runs.iterdir()) == []  # a run that never started leaves no bundle, nor run dirs on the hosts
    assert not any((Path(h["root"]) / "var-tmp" / "labctl" / bundle.name).exists() for h in lab["hosts"])


def _run_processes(lab: dict, run_id: str) -> list[bytes]:
    """The command lines of this run's Python processes (agent, monitors, trainer) on every host."""
    found = []
    for host in lab["hosts"]:
        for pid in processes_in_namespace(host["mount_ns"]):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if run_id.encode() in cmdline and b"python" in cmdline.split(b"\0")[0]:
                found.append(cmdline)
    return found


def test_ctrl_c_during_training_detaches_and_attach_completes_the_bundle(lab, tmp_path):
    runs = tmp_path / "runs"
    proc = _start(lab, runs, _experiment(tmp_path / "e.yaml"))
    wait_for(lambda: _manifest_state(runs) == "running" or proc.poll() is not None, 60)
    time.sleep(2)
    out, err = _ctrl_c(proc)  # with no terminal to ask on, labctl detaches
    assert "Traceback" not in out + err
    assert "labctl attach" in out + err, out + err  # it says how to resume
    (bundle,) = runs.iterdir()
    assert _run_processes(lab, bundle.name)  # detached: training goes on without the controller
    attach = subprocess.run([sys.executable, "-m", "labctl", "-i", lab["inventory"], "attach", str(bundle)],
                            capture_output=True, text=True, timeout=180)
    assert attach.returncode == 0, attach.stdout[-2000:] + attach.stderr[-2000:]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["success"] and manifest["complete"]
    assert verify(bundle, manifest) == []


# last: it takes gpu2 off the network for the rest of this module
def test_one_host_down_the_other_completes_and_nothing_is_lost(lab, tmp_path):
    runs = tmp_path / "runs"
    experiment = _experiment(tmp_path / "e.yaml")
    cmd = [sys.executable, "-m", "labctl", "-i", lab["inventory"], "run", str(experiment),
           "--runs-dir", str(runs), "--lost-after", "4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    gpu1, gpu2 = lab["hosts"]
    try:
        # training has started on gpu2 once its emulator logs a step
        wait_for(lambda: _manifest_state(runs) == "running", 60)
        (run_id,) = [p.name for p in runs.iterdir()]
        train_log = Path(gpu2["root"]) / "var-tmp" / "labctl" / run_id / "gpu2" / "raw" / "train.log"
        wait_for(lambda: train_log.exists() and "train loss" in train_log.read_text(), 60)
        _cut_ssh(gpu2)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out + err
    assert "Traceback" not in out + err
    assert "gpu2" in out + err  # the lost host is named
    (bundle,) = runs.iterdir()
    manifest = json.loads((bundle / "manifest.json").read_text())
    states = {h["name"]: h.get("state") for h in manifest["hosts"]}
    assert states == {"gpu1": "finished", "gpu2": "lost"}
    assert not manifest["success"]
    assert verify(bundle, manifest) == []  # every file collected from gpu1 verifies
    collected = {p.name for p in (bundle / "raw" / "gpu1").iterdir()}
    assert {"train.log", "dmon.log", "mountstats.log"} <= collected
    # gpu2 trains on without the controller and keeps its files for a later `labctl collect`
    wait_for(lambda: "wrote" in train_log.read_text(), 60)
    assert (train_log.parent / "dmon.log").stat().st_size > 0

    report = subprocess.run([sys.executable, "-m", "labctl", "report", str(bundle)], capture_output=True,
                            text=True, timeout=120)
    assert report.returncode == 0, report.stderr[-2000:]
    password = Path(lab["ontap"]["password_file"]).read_text().strip()
    leaks = [p for p in bundle.rglob("*") if p.is_file() and password.encode() in p.read_bytes()]
    assert leaks == []
    assert password not in out + err + report.stdout + report.stderr
