"""Hostile and half-made run bundles: `labctl report` refuses what it cannot trust by name (a clock offset
that is no number, a FIFO or a directory where a log belongs) and never hangs or crashes; `collect` and
`attach` tell an incomplete or never-started run apart from a finished one."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.synthbundle import SynthCheckpoint, SynthSpec, write_run
from tests.hardening.util import emulated_experiment, wait_for

REPORT_TIMEOUT_S = 120  # a report of this bundle takes a few seconds; a hang fails here instead of forever


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("bundle") / "run"
    write_run(run, SynthSpec(warmup_s=5, train_s=60, cooldown_s=5, suppression_s=3, dataset_read_s=10,
                             checkpoints=[SynthCheckpoint(20, 5, 200_000_000)]))
    return run


@pytest.fixture
def bundle(synthetic, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(synthetic, run)
    return run


def report(run: Path) -> subprocess.CompletedProcess[str]:
    """`labctl report RUN` in its own process, as a user runs it (warnings printed as Python prints them)."""
    return subprocess.run([sys.executable, "-m", "labctl", "report", str(run)], capture_output=True,
                          text=True, timeout=REPORT_TIMEOUT_S, stdin=subprocess.DEVNULL)


def assert_refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 1 with a message naming `words`; no traceback, internal error or numpy warning on screen."""
    text = done.stdout + done.stderr
    assert done.returncode == 1, text
    for word in words:
        assert word in text, (word, text)
    for noise in ("Traceback", "internal error", "RuntimeWarning", "Warning:"):
        assert noise not in text, text


@pytest.mark.parametrize("offset", ["NaN", "Infinity", "-Infinity", "1e308", '"12"', "true"])
def test_a_clock_offset_that_is_no_number_is_refused_naming_the_file(bundle, offset):
    clock = bundle / "raw" / "gpu1" / "clock.json"
    clock.write_text(f'{{"offset_s": {offset}, "measured_at": 1700000000.0}}')
    assert_refused(report(bundle), str(clock), "offset_s")
    assert not (bundle / "summary.json").exists()


@pytest.mark.parametrize("field", ["utc_offset_s", "bpftrace"])
def test_other_clock_numbers_are_checked_the_same_way(bundle, field):
    if field == "utc_offset_s":
        path = bundle / "raw" / "gpu1" / "clock.json"
        path.write_text('{"offset_s": 0.0, "utc_offset_s": NaN}')
    else:
        path = bundle / "raw" / "gpu1" / "bpftrace.meta.json"
        meta = json.loads(path.read_text())
        meta["checks"] = [{"realtime_minus_boottime": "soon"}]
        path.write_text(json.dumps(meta))
    assert_refused(report(bundle), str(path))


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _directory(path: Path) -> None:
    path.mkdir()
    (path / "inside.log").write_text("x\n")


def _socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))  # a bound, never-listening socket: the file exists; nobody answers
    sock.close()


def _device(path: Path) -> None:
    path.symlink_to("/dev/zero")  # a device endless to read


KINDS = {"FIFO": _fifo, "directory": _directory, "socket": _socket, "character device": _device}
VICTIMS = ["nfsiostat.log", "nfsiostat.f64", "mountstats.log", "mountstats.f64", "bpftrace.jsonl",
           "bpftrace.f64", "bpftrace.totals.json", "dmon.log", "dmon.f64", "train.log", "clock.json",
           "bpftrace.meta.json", "monitors.json"]


@pytest.mark.parametrize(("victim", "kind"), [(v, k) for v in VICTIMS for k in KINDS
                                              if k == "FIFO" or v in ("dmon.log", "bpftrace.jsonl")])
def test_a_raw_file_that_is_not_a_regular_file_is_refused_by_name(bundle, victim, kind):
    path = bundle / "raw" / "gpu1" / victim
    path.unlink()
    KINDS[kind](path)
    assert_refused(report(bundle), str(path), kind)


@pytest.mark.parametrize("where", ["manifest.json", "events"])
def test_bundle_level_files_are_opened_the_same_way(bundle, where):
    if where == "manifest.json":
        path = bundle / "manifest.json"
        path.unlink()
    else:
        (path,) = list((bundle / "events").rglob("job_events/*.json"))[:1]
        path.unlink()
    os.mkfifo(path)
    assert_refused(report(bundle), str(path), "FIFO")


# --- collect and attach on the simulated lab (root) -------------------------------------------------------


@pytest.fixture
def lab(mounted_lab):
    """The worker's shared simulated lab, FlexGroup mounted (tests/conftest.py)."""
    return mounted_lab


def _experiment(path: Path) -> Path:
    return emulated_experiment(path, "robust", epochs=1, steps=4, compute_s=0.2, phase_s=0.2)


def labctl(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.root
@pytest.mark.slow
def test_collect_exits_1_on_an_incomplete_bundle_and_a_rerun_resumes_and_clears_its_errors(lab, tmp_path):
    runs = tmp_path / "runs"
    experiment = _experiment(tmp_path / "e.yaml")
    done = labctl("-i", lab["inventory"], "run", str(experiment), "--runs-dir", str(runs))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (bundle,) = runs.iterdir()
    dmon = bundle / "raw" / "gpu2" / "dmon.log"
    dmon.unlink()  # lost here; still on gpu2
    manifest_path = bundle / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    gpu2 = next(h for h in manifest["hosts"] if h["name"] == "gpu2")
    port, gpu2["port"] = gpu2["port"], _closed_port()  # gpu2 unreachable while collecting
    manifest_path.write_text(json.dumps(manifest))

    first = labctl("collect", str(bundle))
    text = first.stdout + first.stderr
    assert first.returncode == 1, text
    assert "INCOMPLETE" in text and "gpu2" in text and f"labctl collect {bundle}" in text, text
    assert "Traceback" not in text
    assert not json.loads(manifest_path.read_text())["complete"]

    manifest = json.loads(manifest_path.read_text())
    next(h for h in manifest["hosts"] if h["name"] == "gpu2")["port"] = port  # gpu2 is back
    manifest_path.write_text(json.dumps(manifest))
    second = labctl("collect", str(bundle))
    assert second.returncode == 0, second.stdout + second.stderr
    manifest = json.loads(manifest_path.read_text())
    assert manifest["complete"] and manifest["success"] and dmon.is_file()
    assert not [e for e in manifest["errors"] if "collection failed" in e], manifest["errors"]
    assert [c["complete"] for c in manifest["collections"]][-2:] == [False, True]  # the history is kept


def _blocking_python(tmp_path: Path, mark: Path) -> Path:
    """An interpreter for gpu1 that hangs in the agent's `facts` step (the run is then preparing)."""
    wrapper = tmp_path / "python-hangs-in-facts"
    wrapper.write_text(f'#!/bin/sh\nif [ "$2" = facts ]; then echo $$ > {mark}; exec sleep 600; fi\n'
                       f'exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.parametrize("hosts_recorded", [True, False])
def test_attach_on_a_run_killed_while_preparing_undoes_it_instead_of_polling(lab, tmp_path, hosts_recorded):
    inventory = tmp_path / "inventory"
    shutil.copytree(lab["inventory"], inventory)
    mark = tmp_path / "hung.pid"
    (inventory / "host_vars").mkdir(exist_ok=True)
    (inventory / "host_vars" / "gpu1.yml").write_text(
        f"ansible_python_interpreter: {_blocking_python(tmp_path, mark)}\n")
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "labctl", "-i", str(inventory), "run",
                             str(_experiment(tmp_path / "e.yaml")), "--runs-dir", str(runs)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for(lambda: mark.exists() and mark.read_text().strip() or proc.poll() is not None, 90)
        os.killpg(proc.pid, signal.SIGKILL)  # the controller dies while gpu1 is being prepared
        proc.wait()
        (bundle,) = runs.iterdir()
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert manifest["state"] == "preparing"
        if not hosts_recorded:  # as labctl wrote it before the hosts were recorded up front
            manifest["hosts"] = []
            (bundle / "manifest.json").write_text(json.dumps(manifest))
        host_dirs = [Path(h["root"]) / "var-tmp" / "labctl" / bundle.name for h in lab["hosts"]]
        assert (host_dirs[0] / "gpu1" / "agent" / "agent.pyz").exists()  # what it left on gpu1

        done = labctl("attach", str(bundle), timeout=90)  # polled forever before
        text = done.stdout + done.stderr
        assert done.returncode == 1, text
        assert "never started" in text and "labctl run" in text and "Traceback" not in text, text
        assert not any(d.exists() for d in host_dirs), host_dirs
        assert not bundle.exists()  # a run that never started leaves nothing behind
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if mark.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(mark.read_text()), signal.SIGKILL)
