"""`nfsiostat <interval> <mount>` text (nfs-utils ≤2.2 … HEAD `-m`, PCP's variant) as the host agent logs it:
each block after a `#ts <epoch>` line; and its compact form `nfsiostat.f64` (one row per block: `COLUMNS`;
`labctl.formats.records`).

Columns are mapped from each op's header line, `N (p%)` counts as one cell, the first block per mount
(cumulative since mount) is dropped, free-text lines are ignored (counted).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from typing import Protocol

from .mountstats import NoSkips, Skips

_MOUNT = re.compile(r"^(?P<export>\S+) mounted on (?P<mount>.+?):?\s*$")
_OP_HEADER = re.compile(r"^(?P<op>\w+):\s+ops?/s")
_HEAD_CELLS = re.compile(r"ops?/s|[kM]B/s|[kM]B/op|retrans|avg RTT \(ms\)|avg exe \(ms\)|avg queue \(ms\)"
                         r"|errors")
_VALUE_CELLS = re.compile(r"\d+\s+\(\d+(?:\.\d+)?%\)|-?\d+(?:\.\d+)?")
_PCP_TS = re.compile(r"^Timestamp\s*:\s*(\d\d)/(\d\d)/(\d{4}) (\d\d):(\d\d):(\d\d)")
_SCALE = {"kB/s": 1024.0, "MB/s": 2.0**20, "kB/op": 1024.0, "MB/op": 2.0**20}
# header cell -> (metric suffix, unit)
_NAMES = {"ops/s": ("ops_rate", "ops/s"), "op/s": ("ops_rate", "ops/s"), "kB/s": ("bytes_rate", "B/s"),
          "MB/s": ("bytes_rate", "B/s"), "kB/op": ("bytes_per_op", "B"), "MB/op": ("bytes_per_op", "B"),
          "retrans": ("retrans", "count"), "avg RTT (ms)": ("rtt_ms", "ms"), "avg exe (ms)": ("exe_ms", "ms"),
          "avg queue (ms)": ("queue_ms", "ms"), "errors": ("errors", "count")}
_FIELDS = {"ops_rate": "ops/s", "bytes_rate": "B/s", "bytes_per_op": "B", "retrans": "count", "rtt_ms": "ms",
           "exe_ms": "ms", "queue_ms": "ms", "errors": "count", "bytes": "B"}
# `nfsiostat.f64`: the block's time, then each metric (name without `nfsiostat.`; NaN where the block has
# none). The agent runs nfsiostat without -a/-d/-p: read and write are the ops it prints.
UNITS = {"rpc.ops_rate": "ops/s", "rpc.backlog": "count",
         **{f"{op}.{name}": unit for op in ("read", "write") for name, unit in _FIELDS.items()}}
COLUMNS = ("ts", *UNITS)
Sink = Callable[[str, str, float, float], None]  # metric, unit, timestamp, value
_Column = tuple[str, str, float, str | None]  # metric, unit, scale, the `.bytes` metric of a rate
_TOP: list[_Column] = [("nfsiostat.rpc.ops_rate", "ops/s", 1.0, None),
                       ("nfsiostat.rpc.backlog", "count", 1.0, None)]


class Clock(Protocol):
    """Moves host timestamps onto another clock (labctl.analysis.clock.HostClock is one)."""

    def host(self, epoch: float) -> float: ...

    def local(self, naive_epoch: float) -> float: ...


class SameClock:
    """Host epoch time as it is; host local time taken as UTC."""

    def host(self, epoch: float) -> float:
        return epoch

    def local(self, naive_epoch: float) -> float:
        return naive_epoch


def _cell(text: str) -> float:
    """`12.5` -> 12.5; `3 (0.1%)` -> 3."""
    return float(text.split()[0])


def _column(op: str, cell: str) -> _Column:
    suffix, unit = _NAMES[cell]
    return (f"nfsiostat.{op}.{suffix}", unit, _SCALE.get(cell, 1.0),
            f"nfsiostat.{op}.bytes" if suffix == "bytes_rate" else None)


class Reader:
    """Reads an nfsiostat log line by line (`line`), giving each value to `sink` (wire bytes incl. RPC
    headers). The top `ops/s` line comes from one transport only, so it is dropped (counted) when `nconnect`
    > 1; `nfsiostat.<op>.bytes` (B) is the rate times the time since the previous block of that mount;
    `skip_first=False` keeps the first (since-mount) block."""

    def __init__(self, sink: Sink, clock: Clock | None = None, skips: Skips | None = None, *,
                 nconnect: int = 1, skip_first: bool = True) -> None:
        self.sink, self.clock, self.skips = sink, clock or SameClock(), skips or NoSkips()
        self.nconnect, self.skip_first = nconnect, skip_first
        self.ts: float | None = None
        self.mount: str | None = None
        self.seen: set[str] = set()
        self.last_ts: dict[str, float] = {}
        self.pending: tuple[str, list[_Column]] | None = None  # (kind, its columns) awaiting its values
        self.emit = False
        self.block_prev: float | None = None
        self.headers: dict[str, tuple[str, list[_Column]]] = {}

    def line(self, line: str) -> None:
        """One line (without its newline)."""
        if line.startswith("#ts "):  # a new sample: nothing is emitted until its mount line
            self.emit = False
            try:
                self.ts = self.clock.host(float(line.split()[1]))
            except (ValueError, IndexError):
                self.skips.skip("bad_ts_line")
                self.ts = None
            return
        pcp = _PCP_TS.match(line) if line.startswith("Timestamp") else None
        if pcp:
            mo, d, y, hh, mi, ss = (int(x) for x in pcp.groups())
            self.ts = self.clock.local(calendar.timegm((y, mo, d, hh, mi, ss, 0, 0, 0)))
            self.emit = False
            return
        stripped = line.strip()
        if not stripped:
            return
        m = _MOUNT.match(stripped) if " mounted on " in stripped else None
        if m:
            self._mount(m["mount"])
        elif self.pending is not None:
            kind, columns = self.pending
            self.pending = None
            self._values(kind, columns, _VALUE_CELLS.findall(stripped))
        elif "rpc bklog" in stripped:
            self.pending = ("top", _TOP)
        else:
            known = self.headers.get(stripped)
            if known is None and (oh := _OP_HEADER.match(stripped)):
                op, cells = oh["op"].lower(), _HEAD_CELLS.findall(stripped)
                known = self.headers[stripped] = (op, [_column(op, c) for c in cells])
            if known is not None:
                self.pending = known
            else:
                self.skips.skip("free_text")

    def _mount(self, mount: str) -> None:
        ts = self.ts
        self.mount = mount
        first = mount not in self.seen and self.skip_first
        self.seen.add(mount)
        self.pending = None
        self.emit = not first and ts is not None
        if first:
            self.skips.skip("first_block_since_mount")
        elif ts is None:
            self.skips.skip("no_timestamp")
        self.block_prev = self.last_ts.get(mount)
        if self.emit and self.block_prev is not None and ts is not None and ts <= self.block_prev:
            self.skips.skip("non_increasing_ts")
            self.emit = False
        if ts is not None:
            self.last_ts[mount] = ts

    def _values(self, kind: str, columns: list[_Column], values: list[str]) -> None:
        if len(values) != len(columns):
            self.skips.skip("column_count")
            return
        if not self.emit or self.mount is None or self.ts is None:
            return
        ts = self.ts
        if kind == "top":
            if self.nconnect > 1:
                self.skips.skip("top_line_nconnect")
            else:
                self.sink("nfsiostat.rpc.ops_rate", "ops/s", ts, _cell(values[0]))
            self.sink("nfsiostat.rpc.backlog", "count", ts, _cell(values[1]))
            return
        prev = self.block_prev
        for (metric, unit, scale, bytes_metric), raw in zip(columns, values, strict=True):
            value = _cell(raw) * scale
            self.sink(metric, unit, ts, value)
            if bytes_metric is not None and prev is not None:
                self.sink(bytes_metric, "B", ts, value * (ts - prev))


class Rows:
    """A `Reader` sink that gathers each block's values into one `nfsiostat.f64` row (`COLUMNS`, None where
    the block has none) for `write`; `flush` once the block is complete (the next one begins, or the output
    ends)."""

    def __init__(self, write: Callable[[list[float | None]], object]) -> None:
        self.write = write
        self.ts: float | None = None
        self.cells: dict[str, float] = {}

    def sink(self, metric: str, unit: str, ts: float, value: float) -> None:  # noqa: ARG002 - a Sink
        name = metric.removeprefix("nfsiostat.")
        if ts != self.ts or name in self.cells:
            self.flush()
        self.ts = ts
        if name in UNITS:
            self.cells[name] = value

    def flush(self) -> None:
        """Write the gathered row, if any."""
        if self.cells:
            self.write([self.ts, *(self.cells.get(c) for c in COLUMNS[1:])])
        self.cells = {}


def format_block(export: str, mount: str, top: tuple[float, float],
                 ops: list[tuple[str, list[float], tuple[int, float], tuple[int, float] | None]]) -> str:
    """One mount's report as nfs-utils 2.6.2 prints it: `top` = (ops/s, rpc bklog); per op: label,
    [ops/s, kB/s, kB/op, avg RTT, avg exe, avg queue], (retrans, %), (errors, %) or None."""
    lines = ["", f"{export} mounted on {mount}:", "", f"{'ops/s':>16s}{'rpc bklog':>16s}",
             f"{top[0]:16.3f}{top[1]:16.3f}", ""]
    for label, (rate, kbs, kbop, rtt, exe, queue), (retrans, rpct), errors in ops:
        header = (f"{label + ':':<16s}{'ops/s':>8s}{'kB/s':>16s}{'kB/op':>16s}{'retrans':>16s}"
                  f"{'avg RTT (ms)':>16s}{'avg exe (ms)':>16s}{'avg queue (ms)':>16s}")
        values = (f"{rate:24.3f}{kbs:16.3f}{kbop:16.3f}{f'{retrans} ({rpct:3.1f}%)':>16s}"
                  f"{rtt:16.3f}{exe:16.3f}{queue:16.3f}")
        if errors is not None:
            header += f"{'errors':>16s}"
            values += f"{f'{errors[0]} ({errors[1]:3.1f}%)':>16s}"
        lines.append(header + "\n" + values)
    return "\n".join(lines) + "\n"


def is_mount_line(line: str) -> bool:
    """Whether `line` starts a mount's block (the agent puts its `#ts` line before it)."""
    return line.rstrip().endswith(":") and " mounted on " in line
