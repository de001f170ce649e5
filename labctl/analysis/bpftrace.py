"""`bpftrace -f json` output of labctl's io_by_second.bt (bpftrace 0.14 … 0.26 record shapes).

A `printf` record `tick <nsecs>` closes an interval; the map records that follow it hold that interval's
sums (an absent map means zero). Wall time = nsecs/1e9 + (CLOCK_REALTIME − CLOCK_BOOTTIME) from
`bpftrace.meta.json`. Blank lines, the 0.17 `\\uffffffXX` mis-escapes, bad JSON and unknown records
are handled.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.analysis.clock import HostClock
from labctl.analysis.lines import ParseStats, line_blocks
from labctl.analysis.rawfile import open_raw
from labctl.analysis.series import Column, SeriesStore, joined

if TYPE_CHECKING:
    import numpy as np

SOURCE = "bpftrace"
SUM_MAPS = ("read_bytes", "write_bytes", "read_calls", "write_calls", "fsync_calls")
HIST_MAPS = ("read_size", "write_size")
_MISESCAPE = re.compile(rb"\\uffffff([0-9a-fA-F]{2})")


def fix_escapes(raw: bytes) -> str:
    """Undo bpftrace ≤0.26's sign-extended `\\uffffffXX` escapes of non-ASCII bytes, then decode UTF-8."""
    if b"\\uffffff" in raw:
        raw = _MISESCAPE.sub(lambda m: bytes([int(m[1], 16)]), raw)
    return raw.decode("utf-8", "replace")


@dataclass
class BpfResult:
    """What the trace holds besides the per-second series."""

    stats: ParseStats
    by_comm: dict[str, Counter[str]] = field(default_factory=dict)  # map -> comm -> run total
    hists: dict[str, Counter[tuple[int | None, int | None]]] = field(default_factory=dict)
    opens: list[dict[str, object]] = field(default_factory=list)  # @ckpt_open: ts, comm, path, count
    lost_events: int = 0
    probes: int | None = None


def split_key(key: str, arity: int) -> list[str]:
    """Split a tuple key joined by `,` (free text last, so at most arity-1 splits)."""
    return key.split(",", arity - 1)


_TICK = b'{"type": "printf", "data": "tick '
_MAP = b'{"type": "map", "data": {"@'
_HIST = b'{"type": "hist", "data": {"@'
_PAIR = re.compile(rb'"([^"\\]*)": (\d+)[,}]')
_BUCKET = re.compile(rb'\{"min": (-?\d+), "max": (-?\d+), "count": (\d+)\}')
CHUNK = 4 << 20  # a block per read: small enough to stay in the CPU caches while it is scanned
PARALLEL_MIN = 64 << 20  # files above this are split at tick records and parsed by several workers


@dataclass
class _Part:
    """What one byte range of the trace holds (ticks as boot-clock ns; merged by `parse_bpftrace`)."""

    stats: ParseStats
    ticks: Column = field(default_factory=lambda: Column("q"))
    sums: dict[str, Column] = field(default_factory=lambda: {m: Column("d") for m in SUM_MAPS})
    by_comm: dict[str, dict[bytes | str, int]] = field(default_factory=lambda: {m: {} for m in SUM_MAPS})
    hists: dict[str, dict[tuple, int]] = field(default_factory=lambda: {m: {} for m in HIST_MAPS})
    opens: list[tuple[int, str, str, int]] = field(default_factory=list)
    lost_events: int = 0
    probes: int | None = None
    first_prev: int | None = None  # a start/end marker before this range's first tick
    last_marker: int | None = None


def _range_lines(path: Path, start: int, end: int, stats: ParseStats) -> Iterator[bytes]:
    """Complete lines of bytes [start, end) of `path`."""
    for buf, n in line_blocks(path, stats, start, end, CHUNK):
        lines = bytes(buf[:n]).split(b"\n")
        lines.pop()  # after the last newline
        stats.lines += len(lines)
        yield from lines


def _parse_range(path: Path, start: int, end: int) -> _Part:
    """Parse one range; it begins at a tick record (or the file start)."""
    part = _Part(ParseStats(SOURCE, str(path)))
    cur: dict[str, float] = {}
    ended = False
    for raw in _range_lines(path, start, end, part.stats):
        ended = _line(part, raw, cur, ended)
    _close(part, cur)
    return part


def _close(part: _Part, cur: dict[str, float]) -> None:
    """The last tick's sums (its interval ends with the range)."""
    if part.ticks:
        for m in SUM_MAPS:
            part.sums[m].append(cur.get(m, 0.0))


def _line(part: _Part, raw: bytes, cur: dict[str, float], ended: bool) -> bool:
    """One line: labctl's own tick/map/hist records directly, anything else through `_slow`; returns
    whether the `end` marker has been seen."""
    ticks, sums = part.ticks, part.sums
    if raw.startswith(_TICK) and raw.endswith(b'\\n"}') and raw[len(_TICK):-4].isdigit() \
            and len(raw) - len(_TICK) - 4 <= 18:  # longer: `_slow` checks the int64 range
        if ticks:
            for m in SUM_MAPS:
                sums[m].append(cur.get(m, 0.0))
            cur.clear()
        part.last_marker = int(raw[len(_TICK):-4])
        ticks.append(part.last_marker)
        return ended
    if raw.startswith(_MAP) and raw.endswith(b"}}}") and not ended and ticks:
        q = raw.find(b'": {', len(_MAP))
        name = raw[len(_MAP):q].decode("utf-8", "replace") if q > 0 else ""
        inner = raw[q + 4:-3]
        if name in SUM_MAPS and b"{" not in inner and b"\\" not in inner:
            pairs = _PAIR.findall(inner + b"}")
            if len(pairs) == inner.count(b'": '):
                d, total = part.by_comm[name], 0
                for k, v in pairs:
                    n = int(v)
                    total += n
                    d[k] = d.get(k, 0) + n
                cur[name] = cur.get(name, 0.0) + total
                return ended
    elif raw.startswith(_HIST) and raw.endswith(b"]}}") and not ended and ticks:
        q = raw.find(b'": [', len(_HIST))
        name = raw[len(_HIST):q].decode("utf-8", "replace") if q > 0 else ""
        inner = raw[q + 4:-3]
        buckets = _BUCKET.findall(inner)
        if name in HIST_MAPS and len(buckets) == inner.count(b"{"):
            h = part.hists[name]
            for a, b, c in buckets:
                h[a, b] = h.get((a, b), 0) + int(c)
            return ended
    return _slow(part, raw, cur, ended)


def _slow(part: _Part, raw: bytes, cur: dict[str, float], ended: bool) -> bool:
    """Any other line, through json; returns whether the `end` marker has been seen."""
    stats = part.stats
    if not raw.strip():
        stats.skip("blank")
        return ended
    try:
        rec = json.loads(fix_escapes(raw))
        kind = rec["type"]
        data = rec.get("data")
    except (ValueError, KeyError, TypeError):
        stats.skip("bad_json")
        return ended
    if kind == "printf" and isinstance(data, str):
        word, _, rest = data.strip().partition(" ")
        if word in ("tick", "start", "end"):
            try:
                ns = int(rest.split()[0])
            except (ValueError, IndexError):
                ns = -1
            if not 0 <= ns < 2**63:  # boot-clock nanoseconds fit int64
                stats.skip("bad_marker")
                return ended
            if word == "tick":
                if part.ticks:
                    for m in SUM_MAPS:
                        part.sums[m].append(cur.get(m, 0.0))
                    cur.clear()
                part.ticks.append(ns)
            elif not part.ticks:
                part.first_prev = ns
            part.last_marker = ns
            return ended or word == "end"
        return ended
    if kind in ("map", "hist", "stats") and isinstance(data, dict):
        if ended:
            stats.skip("exit_dump")
        elif not part.ticks:
            stats.skip("before_first_tick")
        else:
            for name, value in data.items():
                _map(part, cur, name.lstrip("@"), value, stats)
    elif kind == "lost_events" and isinstance(data, dict):
        part.lost_events += int(data.get("events", 0) or 0)
    elif kind == "attached_probes" and isinstance(data, dict):
        part.probes = int(data.get("probes", 0) or 0)
    else:
        stats.skip("other_record")
    return ended


def _ranges(path: Path, workers: int) -> list[tuple[int, int]]:
    """Byte ranges that each start at a tick record (the first at 0)."""
    size = path.stat().st_size
    if workers <= 1 or size < PARALLEL_MIN:
        return [(0, size)]
    cuts = [0]
    with open_raw(path) as fh:
        for k in range(1, workers):
            fh.seek(size * k // workers)
            window = fh.read(1 << 20)
            i = window.find(b"\n" + _TICK)
            if i >= 0 and size * k // workers + i + 1 > cuts[-1]:
                cuts.append(size * k // workers + i + 1)
    cuts.append(size)
    return list(zip(cuts[:-1], cuts[1:], strict=True))


class PendingParse:
    """A trace whose ranges are being parsed by workers (files above 64 MiB) while the caller does other
    work; `result` waits for them and merges. Small files are parsed in `result`, in this process. The workers
    are processes."""

    def __init__(self, path: Path, workers: int | None = None) -> None:
        self.path = path
        self.ranges = _ranges(path, workers if workers is not None else min(os.cpu_count() or 1, 8))
        self.pool: Executor | None = None
        self.futures: list = []
        if len(self.ranges) > 1:
            # (ProcessPoolExecutor is looked up only here: importing it costs ~10 ms at every start)
            self.pool = concurrent.futures.ProcessPoolExecutor(len(self.ranges))
            self.futures = [self.pool.submit(_parse_range, path, a, b) for a, b in self.ranges]

    def result(self, host: str, store: SeriesStore, clock: HostClock,
               realtime_minus_boottime: float) -> BpfResult:
        """The parsed trace, its `io.*` series added to `store`."""
        try:
            parts = ([f.result() for f in self.futures] if self.pool is not None
                     else [_parse_range(self.path, *self.ranges[0])])
        finally:
            self.close()
        return _merge(parts, self.path, host, store, clock, realtime_minus_boottime)

    def close(self) -> None:
        """Stop the workers (pending ranges are cancelled); idempotent."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def start_bpftrace(path: Path, *, workers: int | None = None) -> PendingParse:
    """Start parsing a bpftrace file: above 64 MiB it is split at tick records over up to `workers` workers
    (default: CPUs, at most 8; processes), running meanwhile."""
    return PendingParse(path, workers)


def parse_bpftrace(path: Path, host: str, store: SeriesStore, clock: HostClock,
                   realtime_minus_boottime: float, *, workers: int | None = None) -> BpfResult:
    """Parse one bpftrace JSON-lines file into `io.*` series (one record set per tick)."""
    return start_bpftrace(path, workers=workers).result(host, store, clock, realtime_minus_boottime)


def _merge(parts: list[_Part], path: Path, host: str, store: SeriesStore, clock: HostClock,
           offset: float) -> BpfResult:
    import numpy as np  # here, not at import: the trace's scan starts before numpy has loaded

    stats = ParseStats(SOURCE, str(path))
    res = BpfResult(stats, {m: Counter() for m in SUM_MAPS}, {m: Counter() for m in HIST_MAPS})
    ns_parts, dt_parts = [], []
    prev: int | None = None
    for part in parts:
        stats.add(part.stats)
        if part.first_prev is not None:
            prev = part.first_prev
        ns = part.ticks.numpy()
        if ns.size:
            ns_parts.append(ns)
            dt_parts.append(_intervals(ns, prev))
            prev = int(ns[-1])
        if part.last_marker is not None:
            prev = part.last_marker
        for m in SUM_MAPS:
            for k, v in part.by_comm[m].items():
                res.by_comm[m][k.decode("utf-8", "replace") if isinstance(k, bytes) else k] += v
        for m in HIST_MAPS:
            for (lo, hi), n in part.hists[m].items():
                res.hists[m][(_int(lo), _int(hi))] += n
        res.opens += [{"ts": clock.host(ns / 1e9 + offset), "comm": c, "path": p, "count": n}
                      for ns, c, p, n in part.opens]
        res.lost_events += part.lost_events
        res.probes = part.probes if part.probes is not None else res.probes
    if ns_parts:
        ticks = np.concatenate(ns_parts) / 1e9
        ticks += offset
        clock.host_in_place(ticks)
        cols = {m: joined([part.sums[m] for part in parts]) for m in SUM_MAPS}
        _emit(store, host, ticks, np.concatenate(dt_parts), cols)
        stats.records = ticks.size * len(SUM_MAPS)
    return res


def _intervals(ns: np.ndarray, prev: int | None) -> np.ndarray:
    """Seconds since the previous tick (or the marker before the first); 1.0 where that is unknown or not
    positive."""
    import numpy as np

    step = np.empty_like(ns)  # the previous tick, then the step to this one
    step[1:] = ns[:-1]
    step[0] = prev if prev is not None else 0
    unknown = ns <= step
    if prev is None:
        unknown[0] = True
    np.subtract(ns, step, out=step)
    seconds = step / 1e9
    seconds[unknown] = 1.0
    return seconds


def _int(x: bytes | int | None) -> int | None:
    return int(x) if isinstance(x, (bytes, str)) else x


def _emit(store: SeriesStore, host: str, ticks: np.ndarray, dts: np.ndarray,
          cols: dict[str, np.ndarray]) -> None:
    """Per-tick sums as series: `io.<kind>.bytes|calls` (per interval) and `io.<kind>.bytes_rate` (B/s)."""
    for name, values in cols.items():
        kind, what = name.split("_")
        unit = "B" if what == "bytes" else "count"
        store.extend(host, -1, SOURCE, f"io.{kind}.{what}", unit, ticks, values)
        if what == "bytes":
            store.extend(host, -1, SOURCE, f"io.{kind}.bytes_rate", "B/s", ticks, values / dts)


def _num(value: object) -> float:
    """bpftrace ≥0.24 writes integers beyond 2^53 as strings."""
    return float(value) if isinstance(value, (int, float, str)) else 0.0  # type: ignore[arg-type]


def _map(part: _Part, sums: dict[str, float], name: str, value: object, stats: ParseStats) -> None:
    try:
        if name in SUM_MAPS:
            if isinstance(value, dict):
                total = 0.0
                for comm, v in value.items():
                    n = _num(v)
                    total += n
                    d = part.by_comm[name]
                    d[comm] = d.get(comm, 0) + int(n)
            else:
                total = _num(value)
            sums[name] = sums.get(name, 0.0) + total
        elif name in HIST_MAPS and isinstance(value, list):
            h = part.hists[name]
            for b in value:
                key = (b.get("min"), b.get("max"))
                h[key] = h.get(key, 0) + int(b.get("count", 0))
        elif name == "ckpt_open" and isinstance(value, dict):
            for key, v in value.items():
                parts = split_key(key, 2)
                comm, path = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
                part.opens.append((part.ticks.last(), comm, path, int(_num(v))))
        else:
            stats.skip("unknown_map")
    except (ValueError, TypeError, AttributeError):
        stats.skip("bad_map_value")
