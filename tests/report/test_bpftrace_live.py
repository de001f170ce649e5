"""labctl's bpftrace program under the real bpftrace (root only): it compiles, follows forks, and the parser
reads back exactly the bytes a workload moved under the "mount"."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from labctl.analysis.bpftrace import parse_bpftrace
from labctl.analysis.clock import HostClock
from labctl.analysis.series import SeriesStore
from labctl.experiment.bpfprogram import render_program

pytestmark = pytest.mark.root

WORKLOAD = """
import os, sys, time
go, mnt = sys.argv[1], sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.05)
with open(os.path.join(mnt, "checkpoint.pth"), "wb") as f:
    for _ in range(8):
        f.write(b"x" * (1 << 20))
    f.flush()
    os.fsync(f.fileno())
with open(os.path.join(os.path.dirname(mnt), "elsewhere.bin"), "wb") as f:
    f.write(b"y" * (1 << 20))
pid = os.fork()
if pid == 0:
    with open(os.path.join(mnt, "checkpoint.pth"), "rb") as f:
        while f.read(1 << 20):
            pass
    os._exit(0)
os.waitpid(pid, 0)
time.sleep(1.2)
"""


def _tracefs() -> bool:
    if Path("/sys/kernel/tracing/events/syscalls").is_dir():
        return True
    subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], capture_output=True)
    return Path("/sys/kernel/tracing/events/syscalls").is_dir()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("bpftrace") is None, reason="needs root and bpftrace")
def test_program_counts_a_real_workload(tmp_path):
    if not _tracefs():
        pytest.skip("tracefs not available")
    short = Path(tempfile.mkdtemp(prefix="lbt", dir="/tmp"))  # the mount literal must stay under 64 bytes
    mnt = short / "mnt"
    mnt.mkdir()
    prog = tmp_path / "io_by_second.bt"
    prog.write_text(render_program(str(mnt)))
    out, go = tmp_path / "bpftrace.jsonl", tmp_path / "go"
    work = subprocess.Popen([sys.executable, "-c", WORKLOAD, str(go), str(mnt)])
    bt = subprocess.Popen(["bpftrace", "-f", "json", "-o", str(out), str(prog), str(work.pid)],
                          env=dict(os.environ, BPFTRACE_STRLEN="128"), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        # BEGIN (which starts tracking the workload's pid) has run once its "start" line is out; bpftrace
        # reports attached_probes before that, and on a busy machine the workload could open its file between
        while not (out.exists() and '"start ' in out.read_text()):
            assert bt.poll() is None, bt.stderr.read() if bt.stderr else ""
            assert time.time() < deadline, "bpftrace did not attach"
            time.sleep(0.1)
        boot_offset = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        go.touch()
        assert work.wait(timeout=30) == 0
    finally:
        work.kill()
        bt.send_signal(signal.SIGINT)
        bt.wait(timeout=15)
        shutil.rmtree(short, ignore_errors=True)
    store = SeriesStore()
    res = parse_bpftrace(out, "h", store, HostClock(), boot_offset)
    totals = {m: sum(s.values) for (_, _, _, m), s in store.series.items()}
    assert totals["io.write.bytes"] == 8 * 2**20  # the 1 MiB written outside the mount is not counted
    assert totals["io.read.bytes"] == 8 * 2**20  # read by a forked child
    assert totals["io.fsync.calls"] == 1
    assert [o["path"] for o in res.opens] == [f"{mnt}/checkpoint.pth"]
    assert res.hists["write_size"] == {(1048576, 2097151): 8}
    assert not res.stats.skipped.get("bad_json") and res.probes
    text = out.read_text()  # the shipped shape: a flat @io line per tick, per-command maps only at the end
    assert '"@io"' in text and text.index('"totals ') < text.index('"@write_bytes"')
    ticks = next(s for (_, _, _, m), s in store.series.items() if m == "io.write.bytes").ts
    assert abs(ticks[0] - time.time()) < 60  # boot-clock ticks land on the wall clock
