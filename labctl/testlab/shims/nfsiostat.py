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

from labctl.formats.mountstats import Entry, parse_entries
from labctl.formats.nfsiostat import format_block
from labctl.formats.procmounts import escape
from labctl.testlab.shims import exit_on_term

Stats = dict[str, Entry]


def mountstats_path() -> Path:
    return Path(os.environ.get("LABCTL_SIM_HOST_ROOT", "/")) / "proc" / "self" / "mountstats"


def parse(text: str) -> Stats:
    """NFS entries of a mountstats file by mount point."""
    return {e.mount: e for e in parse_entries(text.splitlines()) if e.fstype in ("nfs", "nfs4")}


def _xprt(e: Entry) -> tuple[int, int] | None:
    """Sends and backlog of the last TCP transport (what nfs-utils reads)."""
    tcp = [nums for proto, nums in e.xprts if proto == "tcp"]
    return (tcp[-1][5], tcp[-1][9]) if tcp else None


def _op_row(label: str, new: list[int], old: list[int] | None, interval: float) -> tuple:
    d = [n - (old[i] if old else 0) for i, n in enumerate(new)]
    ops = d[0]
    kilobytes = (d[3] + d[4]) / 1024
    per = (lambda x: x / ops) if ops else (lambda x: 0.0)
    pct = (lambda x: x * 100 / ops) if ops else (lambda x: 0.0)
    errors = (d[8], pct(d[8])) if len(d) >= 9 else None
    return (label, [ops / interval, kilobytes / interval, per(kilobytes), per(d[6]), per(d[7]), per(d[5])],
            (d[1] - ops, pct(d[1] - ops)), errors)


def block(mountpoint: str, new: Entry, old: Entry | None, interval: float) -> str:
    """One mount's report."""
    if old is None:
        interval = float(new.age or 0) or 1.0
    now, before = _xprt(new), (_xprt(old) if old else None)
    sends = now[0] - (before[0] if before else 0) if now else 0
    backlog = now[1] - (before[1] if before else 0) if now else 0
    bklog = (backlog / sends) / interval if sends else 0.0
    rows = [_op_row(label, new.ops[op], old.ops.get(op) if old else None, interval)
            for op, label in (("READ", "read"), ("WRITE", "write")) if op in new.ops]
    return format_block(escape(new.device), escape(mountpoint), (sends / interval, bklog), rows)


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
            if prev is not None and (new.age or 0) < (prev.age or 0):
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
