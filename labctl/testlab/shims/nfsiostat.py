"""`nfsiostat` shim of a simulated host: nfs-utils 2.6.2's block format, from the host's mountstats view.

`nfsiostat [interval [count]] [-a|-d|-p|-s|-l N] [mountpoint …]` reads
`$LABCTL_SIM_HOST_ROOT/proc/self/mountstats` (the real tool reads /proc/self/mountstats). Like the real tool:
the first report is since mount (interval = the mount's age), later ones are deltas divided by the nominal
interval, the transport counters come from the last `xprt:` line only (so nconnect under-reports `ops/s`, as
in nfs-utils), no timestamps. -a/-d/-p are accepted but only the read/write rows are printed.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from labctl.testlab.shims import exit_on_term

Stats = dict[str, dict]


def mountstats_path() -> Path:
    return Path(os.environ.get("LABCTL_SIM_HOST_ROOT", "/")) / "proc" / "self" / "mountstats"


def parse(text: str) -> Stats:
    """NFS entries of a mountstats file: mountpoint → {export, age, xprt (last line), ops}."""
    mounts: Stats = {}
    cur: dict | None = None
    in_ops = False
    for line in text.splitlines():
        if line.startswith("device "):
            parts = line.split(" ")
            cur = None
            in_ops = False
            if len(parts) >= 8 and parts[7] in ("nfs", "nfs4"):
                cur = {"export": parts[1], "age": 0, "xprt": None, "ops": {}}
                mounts[parts[4]] = cur
            continue
        if cur is None:
            continue
        words = line.split()
        if not words:
            cur = None
            continue
        if words[0] == "age:":
            cur["age"] = int(words[1])
        elif words[0] == "xprt:" and words[1] == "tcp":
            nums = [int(w) for w in words[2:]]
            cur["xprt"] = {"sends": nums[5], "backlog": nums[9]}
        elif words[0] == "per-op":
            in_ops = True
        elif in_ops and words[0].endswith(":"):
            cur["ops"][words[0][:-1]] = [int(w) for w in words[1:]]
    return mounts


def _op_row(label: str, new: list[int], old: list[int] | None, interval: float) -> str:
    d = [n - (old[i] if old else 0) for i, n in enumerate(new)]
    ops, trans = d[0], d[1]
    kilobytes = (d[3] + d[4]) / 1024
    retrans = trans - ops
    per = (lambda x: x / ops) if ops else (lambda x: 0.0)
    retrans_pct = retrans * 100 / ops if ops else 0.0
    header = (f"{label + ':':<16s}{'ops/s':>8s}{'kB/s':>16s}{'kB/op':>16s}{'retrans':>16s}"
              f"{'avg RTT (ms)':>16s}{'avg exe (ms)':>16s}{'avg queue (ms)':>16s}")
    values = (f"{ops / interval:24.3f}{kilobytes / interval:16.3f}{per(kilobytes):16.3f}"
              f"{f'{retrans} ({retrans_pct:3.1f}%)':>16s}{per(d[6]):16.3f}{per(d[7]):16.3f}{per(d[5]):16.3f}")
    if len(d) >= 9:
        errors_pct = d[8] * 100 / ops if ops else 0.0
        header += f"{'errors':>16s}"
        values += f"{f'{d[8]} ({errors_pct:3.1f}%)':>16s}"
    return header + "\n" + values


def block(mountpoint: str, new: dict, old: dict | None, interval: float) -> str:
    """One mount's report."""
    if old is None:
        interval = float(new["age"]) or 1.0
    sends = new["xprt"]["sends"] - (old["xprt"]["sends"] if old and old["xprt"] else 0) if new["xprt"] else 0
    backlog = new["xprt"]["backlog"] - (old["xprt"]["backlog"] if old and old["xprt"] else 0) \
        if new["xprt"] else 0
    bklog = (backlog / sends) / interval if sends else 0.0
    lines = ["", f"{new['export']} mounted on {mountpoint}:", "",
             f"{'ops/s':>16s}{'rpc bklog':>16s}", f"{sends / interval:16.3f}{bklog:16.3f}", ""]
    for op, label in (("READ", "read"), ("WRITE", "write")):
        if op in new["ops"]:
            lines.append(_op_row(label, new["ops"][op], old["ops"].get(op) if old else None, interval))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    numbers: list[int] = []
    wanted: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-l", "--list"):
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        if arg.isdigit() and not wanted:
            numbers.append(int(arg))
        else:
            wanted.append(os.path.normpath(arg))
        i += 1
    interval = numbers[0] if numbers else 0
    count = numbers[1] if len(numbers) > 1 else (0 if interval else 1)
    if numbers and interval < 1:
        print("nfsiostat: interval must be a positive integer", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, exit_on_term)
    old: Stats = {}
    done = 0
    while True:
        try:
            stats = parse(mountstats_path().read_text(encoding="utf-8", errors="replace"))
        except OSError:
            stats = {}
        chosen = {m: s for m, s in stats.items() if not wanted or m in wanted}
        if not chosen:
            print("No NFS mount points were found")
            return 1
        for mp, new in chosen.items():
            prev = old.get(mp)
            if prev is not None and new["age"] < prev["age"]:
                prev = None
            sys.stdout.write(block(mp, new, prev, float(interval or 1)))
            sys.stdout.flush()
        old = chosen
        done += 1
        if count and done >= count:
            return 0
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            print("Caught ^C... exiting")
            return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(0)
