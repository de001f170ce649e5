"""`bpftrace -f json` output of labctl's io_by_second.bt (bpftrace 0.14 … 0.26 record shapes).

A `printf` record `tick <nsecs>` closes an interval; the map records that follow it hold that interval's
sums (an absent map means zero). Wall time = nsecs/1e9 + (CLOCK_REALTIME − CLOCK_BOOTTIME) from
`bpftrace.meta.json`. Blank lines, the 0.17 `\\uffffffXX` mis-escapes, bad JSON and unknown records
are handled.
"""

from __future__ import annotations

import json
import re
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from labctl.analysis.clock import HostClock
from labctl.analysis.lines import ParseStats, iter_lines
from labctl.analysis.series import SeriesStore

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


def _fast(raw: bytes) -> tuple[str, object] | None:
    """(map name, value) of a plain map/hist record of labctl's program without a JSON decode, else None."""
    if raw.startswith(_MAP) and raw.endswith(b"}}}"):
        q = raw.find(b'": {', len(_MAP))
        inner = raw[q + 4:-3]
        if q < 0 or b"{" in inner or b"\\" in inner:
            return None
        pairs = _PAIR.findall(inner + b"}")
        if len(pairs) != inner.count(b'": '):
            return None
        name = raw[len(_MAP):q].decode("utf-8", "replace")
        return name, {k.decode("utf-8", "replace"): int(v) for k, v in pairs}
    if raw.startswith(_HIST) and raw.endswith(b"]}}"):
        q = raw.find(b'": [', len(_HIST))
        inner = raw[q + 4:-3]
        buckets = _BUCKET.findall(inner)
        if q < 0 or len(buckets) != inner.count(b"{"):
            return None
        name = raw[len(_HIST):q].decode("utf-8", "replace")
        return name, [{"min": int(a), "max": int(b), "count": int(c)} for a, b, c in buckets]
    return None


def parse_bpftrace(path: Path, host: str, store: SeriesStore, clock: HostClock,
                   realtime_minus_boottime: float) -> BpfResult:
    """Parse one bpftrace JSON-lines file into `io.*` series (one record set per tick)."""
    stats = ParseStats(SOURCE, str(path))
    res = BpfResult(stats, {m: Counter() for m in SUM_MAPS}, {m: Counter() for m in HIST_MAPS})
    prev_ns: int | None = None
    tick_ts: float | None = None
    ended = False
    ticks, dts = array("d"), array("d")
    cols: dict[str, array] = {m: array("d") for m in SUM_MAPS}
    sums: dict[str, float] = {}

    def tick(ns: int) -> None:
        nonlocal prev_ns, tick_ts
        if tick_ts is not None:
            flush()
        dts.append((ns - prev_ns) / 1e9 if prev_ns is not None and ns > prev_ns else 1.0)
        tick_ts = clock.host(ns / 1e9 + realtime_minus_boottime)
        ticks.append(tick_ts)
        prev_ns = ns

    def flush() -> None:
        for name in SUM_MAPS:
            cols[name].append(sums.get(name, 0.0))
        sums.clear()

    for raw in iter_lines(path, stats):
        if raw.startswith(_TICK) and raw.endswith(b'\\n"}') and raw[len(_TICK):-4].isdigit():
            tick(int(raw[len(_TICK):-4]))
            continue
        fast = _fast(raw)
        if fast is not None:
            if ended:
                stats.skip("exit_dump")
            elif tick_ts is None:
                stats.skip("before_first_tick")
            else:
                _map(res, sums, fast[0], fast[1], tick_ts, stats)
            continue
        if not raw.strip():
            stats.skip("blank")
            continue
        try:
            rec = json.loads(fix_escapes(raw))
            kind = rec["type"]
            data = rec.get("data")
        except (ValueError, KeyError, TypeError):
            stats.skip("bad_json")
            continue
        if kind == "printf" and isinstance(data, str):
            word, _, rest = data.strip().partition(" ")
            if word in ("tick", "start", "end"):
                try:
                    ns = int(rest.split()[0])
                except (ValueError, IndexError):
                    stats.skip("bad_marker")
                    continue
                if word == "tick":
                    tick(ns)
                else:
                    ended = ended or word == "end"
                    prev_ns = ns
            continue
        if kind in ("map", "hist", "stats") and isinstance(data, dict):
            if ended:
                stats.skip("exit_dump")
                continue
            if tick_ts is None:
                stats.skip("before_first_tick")
                continue
            for name, value in data.items():
                _map(res, sums, name.lstrip("@"), value, tick_ts, stats)
        elif kind == "lost_events" and isinstance(data, dict):
            res.lost_events += int(data.get("events", 0) or 0)
        elif kind == "attached_probes" and isinstance(data, dict):
            res.probes = int(data.get("probes", 0) or 0)
        else:
            stats.skip("other_record")
    if tick_ts is not None:
        flush()
    _emit(store, host, ticks, dts, cols)
    stats.records += len(ticks) * len(SUM_MAPS)
    return res


def _emit(store: SeriesStore, host: str, ticks: array, dts: array, cols: dict[str, array]) -> None:
    """Per-tick sums as series: `io.<kind>.bytes|calls` (per interval) and `io.<kind>.bytes_rate` (B/s)."""
    if not ticks:
        return
    for name, col in cols.items():
        kind, what = name.split("_")
        store.extend(host, -1, SOURCE, f"io.{kind}.{what}", "B" if what == "bytes" else "count", ticks, col)
        if what == "bytes":
            rate = array("d", (v / d for v, d in zip(col, dts, strict=True)))
            store.extend(host, -1, SOURCE, f"io.{kind}.bytes_rate", "B/s", ticks, rate)


def _num(value: object) -> float:
    """bpftrace ≥0.24 writes integers beyond 2^53 as strings."""
    return float(value) if isinstance(value, (int, float, str)) else 0.0  # type: ignore[arg-type]


def _map(res: BpfResult, sums: dict[str, float], name: str, value: object, ts: float,
         stats: ParseStats) -> None:
    try:
        if name in SUM_MAPS:
            if isinstance(value, dict):
                total = 0.0
                for comm, v in value.items():
                    n = _num(v)
                    total += n
                    res.by_comm[name][comm] += int(n)
            else:
                total = _num(value)
            sums[name] = sums.get(name, 0.0) + total
        elif name in HIST_MAPS and isinstance(value, list):
            for b in value:
                res.hists[name][(b.get("min"), b.get("max"))] += int(b.get("count", 0))
        elif name == "ckpt_open" and isinstance(value, dict):
            for key, v in value.items():
                parts = split_key(key, 2)
                comm, path = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
                res.opens.append({"ts": ts, "comm": comm, "path": path, "count": int(_num(v))})
        else:
            stats.skip("unknown_map")
    except (ValueError, TypeError, AttributeError):
        stats.skip("bad_map_value")
