"""Hostile and half-made run bundles: `labctl report` refuses what it cannot trust by name (a clock offset
that is no number, a FIFO or a directory where a log belongs) and never hangs or crashes; `collect` and
`attach` tell an incomplete or never-started run apart from a finished one."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.analysis.synth import SynthCheckpoint, SynthSpec, write_run

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
VICTIMS = ["nfsiostat.log", "mountstats.log", "bpftrace.jsonl", "dmon.log", "train.log", "clock.json",
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
