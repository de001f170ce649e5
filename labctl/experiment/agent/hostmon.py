#!/usr/bin/env python3
"""Host-side samplers started by the agent (stdlib only).

hostmon.py mountstats PROC_FILE MOUNT INTERVAL OUT RATE_JSON
    every INTERVAL s: a line "#ts <epoch> <monotonic>" then the mount's block of PROC_FILE verbatim
    (`device … mounted on MOUNT with fstype nfs4 statvers=1.1` up to the next device line; every
    `xprt:` line of an nconnect mount is kept), its counters as one row of OUT's `.f64` sibling
    (labctl.formats.mountstats.COLUMNS, labctl.formats.records), and the latest read/write bytes/s to
    RATE_JSON.
hostmon.py nfsiostat INTERVAL MOUNT OUT
    runs `nfsiostat INTERVAL MOUNT` and writes its output verbatim, each block preceded by "#ts <epoch>", and
    its values as one row per block to OUT's `.f64` sibling (labctl.formats.nfsiostat.Rows).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

from labctl.fileops import write_json_atomic
from labctl.formats import mountstats as ms
from labctl.formats import nfsiostat as nf
from labctl.formats import records

_stop = False


def _on_term(signum, frame):  # noqa: ARG001
    global _stop
    _stop = True


def sample_mountstats(proc_file: str, mount: str, interval: float, out: str, rate_path: str) -> int:
    """The 1 s mountstats sampler; runs until SIGTERM/SIGINT."""
    prev: tuple[float, tuple[int, int]] | None = None
    missing = 0
    start = time.monotonic()
    k = 0
    rows = records.Appender(Path(out).with_suffix(".f64"), ms.COLUMNS)
    with open(out, "a", encoding="utf-8") as fh, contextlib.closing(rows):
        while not _stop:
            try:
                with open(proc_file, encoding="utf-8", errors="replace") as src:
                    text = src.read()
            except OSError as exc:
                text = ""
                print(f"cannot read {proc_file}: {exc}", file=sys.stderr, flush=True)
            wall, mono = time.time(), time.monotonic()
            block = ms.find_block(text, mount)
            if block is None:
                missing += 1
                if missing in (1, 10, 100) or missing % 1000 == 0:
                    print(f"{mount} not in {proc_file} ({missing} samples)", file=sys.stderr, flush=True)
            else:
                fh.write(ms.format_snapshot(wall, mono, block))
                fh.flush()
                entry = ms.pick(ms.parse_entries(block.splitlines()), mount)
                if entry is not None and entry.complete():  # what the analysis can take an interval from
                    rows.row(ms.record(wall, mono, entry))
                if entry is not None and len(entry.bytes) >= 7:
                    counters = entry.bytes[4], entry.bytes[5]
                    if prev is not None and mono > prev[0]:
                        dt = mono - prev[0]
                        rate = {
                            "t": wall,
                            "read_Bps": max(0, counters[0] - prev[1][0]) / dt,
                            "write_Bps": max(0, counters[1] - prev[1][1]) / dt,
                        }
                        write_json_atomic(Path(rate_path), rate, indent=None)
                    prev = (mono, counters)
            k += 1
            delay = start + k * interval - time.monotonic()
            if delay < 0:  # fell behind: skip to the next slot rather than burst
                k = int((time.monotonic() - start) / interval) + 1
                delay = start + k * interval - time.monotonic()
            _sleep(delay)
    return 0


def _sleep(seconds: float) -> None:
    end = time.monotonic() + max(0.0, seconds)
    while not _stop:
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.2))


def run_nfsiostat(interval: int, mount: str, out: str) -> int:
    """nfsiostat with a "#ts <epoch>" line before every block (its own output has no timestamps)."""
    try:
        proc = subprocess.Popen(
            ["nfsiostat", str(interval), mount],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
    except FileNotFoundError:
        print("nfsiostat not found (install nfs-common / nfs-utils)", file=sys.stderr, flush=True)
        return 127

    def forward(signum, frame):  # noqa: ARG001
        _on_term(signum, frame)
        if proc.poll() is None:
            proc.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    held: list[str] = []
    rows = records.Appender(Path(out).with_suffix(".f64"), nf.COLUMNS)
    with open(out, "a", encoding="utf-8") as fh, contextlib.closing(rows):
        wide = nf.Rows(rows.row)
        reader = nf.Reader(wide.sink)
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.strip():
                held.append(line)
                continue
            if nf.is_mount_line(line):
                stamp = f"#ts {time.time():.6f}"
                fh.write(stamp + "\n")
                wide.flush()  # the previous block is complete
                reader.line(stamp)
            fh.write("".join(held) + line)
            for text in [*held, line]:
                reader.line(text.rstrip("\r\n"))
            held.clear()
            fh.flush()
        if held:
            fh.write("".join(held))
        wide.flush()
    rc = proc.wait()
    return 0 if _stop else rc


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    if len(argv) == 6 and argv[0] == "mountstats":
        return sample_mountstats(argv[1], argv[2], float(argv[3]), argv[4], argv[5])
    if len(argv) == 4 and argv[0] == "nfsiostat":
        return run_nfsiostat(int(argv[1]), argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
