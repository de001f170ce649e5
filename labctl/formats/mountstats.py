"""`/proc/self/mountstats` NFS entries; the bundle's `mountstats.log` (verbatim snapshots) and its compact
`mountstats.f64` (one row of counters per snapshot, `labctl.formats.records`).

`mountstats.log`: per sample a line `#ts <epoch> <monotonic>`, then the mount's entry verbatim.
`mountstats.f64`: the columns `COLUMNS`, one row per complete snapshot (`record`); an op the entry lacks
has no values (NaN), nor has `errors` where the kernel prints 8 per-op fields. Every counter of the
`DATA_OPS`; of the other ops their op counts, and their retransmissions (transmissions − ops), timeouts and
errors summed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from .procmounts import escape, options, unescape

OPS = ("READ", "WRITE", "COMMIT", "GETATTR", "LOOKUP", "OPEN", "CLOSE", "RENAME", "ACCESS", "LAYOUTGET",
       "LAYOUTCOMMIT", "LAYOUTRETURN", "READDIR", "SETATTR")
OP_FIELDS = ("ops", "trans", "timeouts", "bytes_sent", "bytes_recv", "queue", "rtt", "exe", "errors")
EV_FSYNC, EV_PNFS_READ, EV_PNFS_WRITE = 15, 25, 26
XPRT_SENDS = {"tcp": (5, 8), "rdma": (5, 8), "udp": (2, 5)}  # sends / backlog field after the protocol word
_DEVICE = re.compile(r"^device (\S+) mounted on (\S+) with fstype (\S+)(?: statvers=(\S+))?")
_OP_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


class Skips(Protocol):
    """Where a parser counts what it skipped (labctl.analysis.lines.ParseStats is one)."""

    def skip(self, reason: str, n: int = 1) -> None: ...


class NoSkips:
    """Skips that are not counted."""

    def skip(self, reason: str, n: int = 1) -> None:
        """Forget it."""


class CountedSkips:
    """Skips counted by reason (for a writer that keeps the reader's accounting)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def skip(self, reason: str, n: int = 1) -> None:
        """Count it."""
        self.counts[reason] += n


@dataclass
class Entry:
    """One `device … mounted on …` entry. `info` keeps other `key: value` lines verbatim, in order."""

    device: str
    mount: str
    fstype: str
    statvers: str = ""
    opts: dict[str, str] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)
    age: int | None = None
    events: list[int] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)
    rpc: str = ""  # the `RPC iostats version:` line's text
    xprts: list[tuple[str, list[int]]] = field(default_factory=list)
    ops: dict[str, list[int]] = field(default_factory=dict)

    @property
    def is_nfs(self) -> bool:
        return self.fstype.startswith("nfs")

    @property
    def nfsv4(self) -> dict[str, str]:
        return options(self.info.get("nfsv4", ""))

    def complete(self) -> bool:
        """Has the counters an interval needs (a snapshot cut short lacks them)."""
        return len(self.bytes) == 8 and "READ" in self.ops and "WRITE" in self.ops

    def xprt_sums(self) -> tuple[int, int]:
        """Sends and backlog summed over the transports."""
        sends = bklog = 0
        for proto, nums in self.xprts:
            i, j = XPRT_SENDS.get(proto, (5, 8))
            if len(nums) > j:
                sends, bklog = sends + nums[i], bklog + nums[j]
        return sends, bklog

    def format(self) -> str:
        """The entry as the kernel writes it (statvers 1.1 whitespace), with its closing blank line."""
        vers = f" statvers={self.statvers}" if self.statvers else ""
        lines = [f"device {escape(self.device)} mounted on {escape(self.mount)} "
                 f"with fstype {self.fstype}{vers}",
                 "\topts:\t" + ",".join(f"{k}={v}" if v else k for k, v in self.opts.items())]
        if self.age is not None:
            lines.append(f"\tage:\t{self.age}")
        lines += [f"\t{k}:\t{v}" for k, v in self.info.items()]
        lines += [f"\tevents:\t{' '.join(map(str, self.events))} ",
                  f"\tbytes:\t{' '.join(map(str, self.bytes))} "]
        if self.rpc:
            lines.append(f"\tRPC iostats version: {self.rpc}")
        lines += [f"\txprt:\t{proto} {' '.join(map(str, nums))}" for proto, nums in self.xprts]
        lines.append("\tper-op statistics")
        lines += [f"\t{op:>12s}: {' '.join(map(str, nums))}" for op, nums in self.ops.items()]
        return "\n".join(lines) + "\n\n"


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split()]


def parse_entries(lines: Iterable[str], skips: Skips | None = None) -> Iterator[Entry]:
    """Entries of a mountstats text (lines without newlines); malformed lines are counted, never fatal."""
    skips = skips or NoSkips()
    cur: Entry | None = None
    in_ops = False
    for line in lines:
        if line.startswith("device "):
            if cur is not None:
                yield cur
            m = _DEVICE.match(line)
            cur, in_ops = None, False
            if m is None:
                skips.skip("bad_device_line")
                continue
            cur = Entry(unescape(m[1]), unescape(m[2]), m[3], m[4] or "")
            continue
        if cur is None:
            continue
        s = line.strip()
        if not s:
            yield cur
            cur, in_ops = None, False
            continue
        try:
            in_ops = _line(cur, s, in_ops, skips)
        except (ValueError, IndexError):
            skips.skip("bad_counter_line")
    if cur is not None:
        yield cur


def _line(cur: Entry, s: str, in_ops: bool, skips: Skips) -> bool:
    """One stripped line of an entry into `cur`; returns whether the per-op lines have begun."""
    name, sep, rest = s.partition(": ")
    if in_ops or (sep and _OP_NAME.match(name)):  # op lines, with or without their marker line
        if not sep:
            skips.skip("bad_op_line")
        elif name in OPS:
            nums = _ints(rest)
            if len(nums) < 8:
                skips.skip("bad_op_line")
            else:
                cur.ops[name] = nums
        return in_ops
    key, _, value = s.partition(":")
    value = value.strip()
    if key == "bytes":
        cur.bytes = _ints(value)
    elif key == "xprt":
        parts = value.split()
        cur.xprts.append((parts[0], [int(x) for x in parts[1:]]))
    elif key == "events":
        cur.events = _ints(value)
    elif key == "age":
        cur.age = int(value)
    elif key == "opts":
        cur.opts = options(value)
    elif key == "RPC iostats version":
        cur.rpc = value
    elif s.startswith("per-op statistics"):
        return True
    elif key and " " not in key:
        cur.info[key] = value
    return in_ops


def pick(entries: Iterable[Entry], mount: str | None = None) -> Entry | None:
    """The NFS entry on `mount` (any NFS entry when none is on it, or `mount` is None)."""
    nfs = [e for e in entries if e.is_nfs]
    if mount:
        nfs = [e for e in nfs if e.mount == mount] or nfs
    return nfs[0] if nfs else None


def find_block(text: str, mount: str) -> str | None:
    """The verbatim entry of `mount` in a mountstats text (its device line up to the next one), or None."""
    needle = f" mounted on {escape(mount)} with fstype "
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("device ") and needle in line:
            end = i + 1
            while end < len(lines) and not lines[end].startswith("device "):
                end += 1
            return "".join(lines[i:end])
    return None


def format_snapshot(epoch: float, mono: float, block: str) -> str:
    """One `mountstats.log` sample."""
    return f"#ts {epoch:.6f} {mono:.6f}\n{block if block.endswith(chr(10)) else block + chr(10)}"


def read_snapshots(lines: Iterable[str],
                   skips: Skips | None = None) -> Iterator[tuple[float, float, list[str]]]:
    """(epoch, monotonic, the entry's lines) per `mountstats.log` sample; lines before the first `#ts` and
    samples with a bad `#ts` line are skipped (counted)."""
    skips = skips or NoSkips()
    head: tuple[float, float] | None = None
    body: list[str] = []
    started = False
    for line in lines:
        if line.startswith("#ts "):
            if head is not None:
                yield head[0], head[1], body
            elif started:
                skips.skip("outside_snapshot", len(body))
            started, body = True, []
            fields = line[4:].split()
            try:
                head = float(fields[0]), float(fields[1]) if len(fields) > 1 else float(fields[0])
            except (ValueError, IndexError):
                skips.skip("bad_ts_line")
                head = None
        else:
            body.append(line)
    if head is not None:
        yield head[0], head[1], body
    elif body:
        skips.skip("outside_snapshot", len(body))


DATA_OPS = ("READ", "WRITE", "COMMIT")  # every counter of these; of the other ops, ops and their sums
DATA_FIELDS = ("ops", "trans", "timeouts", "queue", "rtt", "exe", "errors")
OTHER_OPS = tuple(op for op in OPS if op not in DATA_OPS)
COLUMNS = ("ts", "mono", "age", *(f"bytes{i}" for i in range(8)), "events", "fsync", "pnfs_read",
           "pnfs_write", "xprts", "xprt_sends", "xprt_backlog",
           *(f"{op.lower()}_{f}" for op in DATA_OPS for f in DATA_FIELDS),
           *(f"{op.lower()}_ops" for op in OTHER_OPS), "other_retrans", "other_timeouts", "other_errors")
_OP_INDEX = {"ops": 0, "trans": 1, "timeouts": 2, "queue": 5, "rtt": 6, "exe": 7, "errors": 8}


def record(epoch: float, mono: float, e: Entry) -> list[float | None]:
    """The `mountstats.f64` row (in `COLUMNS` order; None: none) of a complete entry."""
    ev = e.events
    sends, backlog = e.xprt_sums()
    events = (ev[i] if len(ev) > i else None for i in (EV_FSYNC, EV_PNFS_READ, EV_PNFS_WRITE))
    times = [round(epoch, 6), round(mono, 6)]  # as `format_snapshot` writes them
    row: list[float | None] = [*times, e.age, *e.bytes, len(ev), *events, len(e.xprts), sends, backlog]
    for op in DATA_OPS:
        nums = e.ops.get(op) or []
        row += [nums[_OP_INDEX[f]] if len(nums) > _OP_INDEX[f] else None for f in DATA_FIELDS]
    others = [e.ops[op] for op in OTHER_OPS if op in e.ops]
    row += [e.ops[op][0] if op in e.ops else None for op in OTHER_OPS]
    errors = [n[8] for n in others if len(n) > 8]
    return [*row, sum(n[1] - n[0] for n in others), sum(n[2] for n in others),
            sum(errors) if errors else None]
