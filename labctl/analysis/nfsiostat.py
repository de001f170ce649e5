"""`nfsiostat <interval> <mount>` text (nfs-utils ≤2.2 … HEAD `-m`, PCP's variant), blocks after `#ts <ep>`.

Columns are mapped from each op's header line, `N (p%)` counts as one cell, the first block per mount
(cumulative since mount) is dropped, free-text lines are ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

from labctl.analysis.clock import HostClock, naive_epoch
from labctl.analysis.lines import ParseStats, line_blocks
from labctl.analysis.native import scanner
from labctl.analysis.series import Column, SeriesStore

SOURCE = "nfsiostat"
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


def _cell(text: str) -> float:
    """`12.5` -> 12.5; `3 (0.1%)` -> 3."""
    return float(text.split()[0])


_Column = tuple[str, str, float, str | None]  # metric, unit, scale, the `.bytes` metric of a rate
_TOP: list[_Column] = [("nfsiostat.rpc.ops_rate", "ops/s", 1.0, None),  # the `ops/s  rpc bklog` line
                       ("nfsiostat.rpc.backlog", "count", 1.0, None)]
_TOP_PENDING = ("top", _TOP)  # what the `ops/s  rpc bklog` line leaves pending


def _column(op: str, cell: str) -> _Column:
    """Where one header cell's values go."""
    suffix, unit = _NAMES[cell]
    return (f"nfsiostat.{op}.{suffix}", unit, _SCALE.get(cell, 1.0),
            f"nfsiostat.{op}.bytes" if suffix == "bytes_rate" else None)


class _Parse:
    """State of one `parse_nfsiostat` call; `line` is the reference parser of one line."""

    def __init__(self, path: Path, host: str, store: SeriesStore, clock: HostClock, nconnect: int,
                 skip_first: bool) -> None:
        self.host, self.store, self.clock = host, store, clock
        self.nconnect, self.skip_first = nconnect, skip_first
        self.stats = ParseStats(SOURCE, str(path))
        self.ts: float | None = None
        self.mount: str | None = None
        self.seen: set[str] = set()  # mounts with a block so far
        self.last_ts: dict[str, float] = {}
        self.mount_lines: dict[str, str] = {}  # mount -> its last mount line (stripped)
        self.pending: tuple[str, list[_Column]] | None = None  # (kind, its columns) awaiting its value line
        self.emit = False
        self.block_prev: float | None = None
        self.headers: dict[str, tuple[str, list[_Column]]] = {}  # op header line -> (op, its columns)
        self.made: dict[str, tuple[str, Column, Column]] = {}  # metric -> unit, times, values (in order)

    def columns(self, metric: str, unit: str) -> tuple[Column, Column]:
        """The times and values of `metric` so far (joined and put in the store by `finish`)."""
        made = self.made.get(metric)
        if made is None:
            made = self.made[metric] = (unit, Column("d"), Column("d"))
        return made[1], made[2]

    def add(self, metric: str, unit: str, value: float) -> None:
        ts, values = self.columns(metric, unit)
        ts.append(self.ts)  # type: ignore[arg-type]
        values.append(value)
        self.stats.records += 1

    def finish(self) -> None:
        """Every series into the store, each joined once (growing arrays block by block would copy them at
        every block)."""
        for metric, (unit, ts, values) in self.made.items():
            self.store.extend(self.host, -1, SOURCE, metric, unit, ts.numpy(), values.numpy())

    def line(self, line: str) -> None:
        stats = self.stats
        if line.startswith("#ts "):  # a new sample: nothing is emitted until its mount line
            self.emit = False
            try:
                self.ts = self.clock.host(float(line.split()[1]))
            except (ValueError, IndexError):
                stats.skip("bad_ts_line")
                self.ts = None
            return
        pcp = _PCP_TS.match(line) if line.startswith("Timestamp") else None
        if pcp:
            mo, d, y, hh, mi, ss = (int(x) for x in pcp.groups())
            self.ts = self.clock.local(naive_epoch(y, mo, d, hh, mi, ss))
            self.emit = False
            return
        stripped = line.strip()
        if not stripped:
            return
        m = _MOUNT.match(stripped) if " mounted on " in stripped else None
        if m:
            self._mount(m["mount"], stripped)
            return
        if self.pending is not None:
            kind, columns = self.pending
            self.pending = None
            self._values(kind, columns, _VALUE_CELLS.findall(stripped))
            return
        if "rpc bklog" in stripped:
            self.pending = _TOP_PENDING
            return
        known = self.headers.get(stripped)
        if known is None and (oh := _OP_HEADER.match(stripped)):
            op, cells = oh["op"].lower(), _HEAD_CELLS.findall(stripped)
            known = self.headers[stripped] = (op, [_column(op, c) for c in cells])
        if known is not None:
            self.pending = known
            return
        stats.skip("free_text")

    def _mount(self, mount: str, stripped: str) -> None:
        stats, ts = self.stats, self.ts
        self.mount = mount
        self.mount_lines[mount] = stripped
        first = mount not in self.seen and self.skip_first
        self.seen.add(mount)
        self.pending = None
        self.emit = not first and ts is not None
        if first:
            stats.skip("first_block_since_mount")
        elif ts is None:
            stats.skip("no_timestamp")
        self.block_prev = self.last_ts.get(mount)
        if self.emit and self.block_prev is not None and ts is not None and ts <= self.block_prev:
            stats.skip("non_increasing_ts")
            self.emit = False
        if ts is not None:
            self.last_ts[mount] = ts

    def _values(self, kind: str, columns: list[_Column], values: list[str]) -> None:
        if len(values) != len(columns):
            self.stats.skip("column_count")
            return
        if not self.emit or self.mount is None:
            return
        if kind == "top":
            if self.nconnect > 1:
                self.stats.skip("top_line_nconnect")
            else:
                self.add("nfsiostat.rpc.ops_rate", "ops/s", _cell(values[0]))
            self.add("nfsiostat.rpc.backlog", "count", _cell(values[1]))
            return
        prev, ts = self.block_prev, self.ts
        for (metric, unit, scale, bytes_metric), raw in zip(columns, values, strict=True):
            value = _cell(raw) * scale
            self.add(metric, unit, value)
            if bytes_metric is not None and prev is not None:
                self.add(bytes_metric, "B", value * (ts - prev))  # type: ignore[operator]


MAX_TABLE, MAX_COLUMNS = 64, 32  # mounts and header lines the scanner is given; columns of a header


class _Native:
    """Hands runs of lines to the compiled scanner (`_scan.nfsiostat`) and the rest to `_Parse.line`."""

    def __init__(self, scan: ModuleType, parse: _Parse) -> None:
        self.scan, self.p = scan, parse
        self.metrics: list[tuple[str, str]] = []
        self.sid: dict[str, int] = {}
        self.top = (self._id("nfsiostat.rpc.ops_rate", "ops/s"), self._id("nfsiostat.rpc.backlog", "count"))

    def _id(self, metric: str, unit: str) -> int:
        if metric not in self.sid:
            self.sid[metric] = len(self.metrics)
            self.metrics.append((metric, unit))
        return self.sid[metric]

    def block(self, buf: bytearray, end: int) -> None:
        """Every line of `buf[:end]` (complete lines)."""
        p, pos = self.p, 0
        with memoryview(buf)[:end] as data:
            while pos < end:
                pos = self._scan(data, pos)
                if pos < end:
                    nl = buf.index(b"\n", pos, end)
                    p.line(buf[pos:nl].rstrip(b"\r").decode("utf-8", "replace"))
                    p.stats.lines += 1
                    pos = nl + 1

    def _scan(self, data: memoryview, pos: int) -> int:
        p = self.p
        names = [name for name in p.mount_lines if name in p.last_ts and p.mount_lines[name].isascii()]
        names = names[:MAX_TABLE]
        mounts = [(p.mount_lines[name].encode(), p.last_ts[name]) for name in names]
        headers, keys = [], []
        for stripped, known in p.headers.items():
            _op, columns = known
            if stripped.isascii() and len(columns) <= MAX_COLUMNS and len(keys) < MAX_TABLE:
                keys.append(known)
                headers.append((stripped.encode(), tuple(
                    (self._id(metric, unit), scale, self._id(bm, "B") if bm else -1)
                    for metric, unit, scale, bm in columns)))
        pending = -1 if p.pending is None else -2 if p.pending is _TOP_PENDING else next(
            (k for k, known in enumerate(keys) if known is p.pending), None)
        if pending is None:  # awaiting the values of a header the scanner was not given
            return pos
        out = self.scan.nfsiostat(data, pos, (p.ts, p.emit, p.block_prev, pending), p.clock.offset_s, mounts,
                                  headers, self.top, p.nconnect > 1, len(self.metrics))
        stop, (p.ts, p.emit, p.block_prev, k), cur, lasts, cols, records, lines, skipped = out
        p.pending = None if k == -1 else _TOP_PENDING if k == -2 else keys[k]
        p.last_ts.update(zip(names, lasts, strict=True))
        if cur >= 0:
            p.mount = names[cur]
        for sid, ts, values in cols:
            ts_col, values_col = p.columns(*self.metrics[sid])
            ts_col.add_chunk(ts)
            values_col.add_chunk(values)
        p.stats.records += records
        p.stats.lines += lines
        for reason, n in skipped.items():
            p.stats.skip(reason, n)
        return stop


def parse_nfsiostat(path: Path, host: str, store: SeriesStore, clock: HostClock, *,
                    nconnect: int = 1, skip_first: bool = True) -> ParseStats:
    """Parse one nfsiostat log into `nfsiostat.<op>.*` series (wire bytes incl. RPC headers).

    `skip_first=False` keeps the first (since-mount) block, e.g. for a one-shot capture.
    The top `ops/s` line comes from one transport only, so it is dropped (and counted) when `nconnect` > 1.
    `nfsiostat.<op>.bytes` (B) is the rate times the measured time since the previous block of that mount.
    With the compiled scanner, the lines it can read exactly go to it and the others to `_Parse.line`.
    """
    p = _Parse(path, host, store, clock, nconnect, skip_first)
    scan = scanner()
    native = _Native(scan, p) if scan is not None else None
    for buf, used in line_blocks(path, p.stats):
        if native is not None:  # it counts the lines it reads
            native.block(buf, used)
        else:
            p.stats.lines += buf.count(b"\n", 0, used)
            for raw in buf[:used].split(b"\n")[:-1]:
                p.line(raw.rstrip(b"\r").decode("utf-8", "replace"))
    p.finish()
    return p.stats
