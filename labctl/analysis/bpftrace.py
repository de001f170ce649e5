"""`bpftrace -f json` output of labctl's io_by_second.bt (bpftrace 0.14 … 0.26 record shapes).

A `printf` record `tick <nsecs>` closes an interval; the map records that follow it hold that interval's
sums (an absent map means zero). Wall time = nsecs/1e9 + (CLOCK_REALTIME − CLOCK_BOOTTIME) from
`bpftrace.meta.json`. Blank lines, the 0.17 `\\uffffffXX` mis-escapes, bad JSON and unknown records
are handled.
"""

from __future__ import annotations

import json
import re
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


def parse_bpftrace(path: Path, host: str, store: SeriesStore, clock: HostClock,
                   realtime_minus_boottime: float) -> BpfResult:
    """Parse one bpftrace JSON-lines file into `io.*` series (one record set per tick)."""
    stats = ParseStats(SOURCE, str(path))
    res = BpfResult(stats, {m: Counter() for m in SUM_MAPS}, {m: Counter() for m in HIST_MAPS})
    prev_ns: int | None = None
    tick_ts: float | None = None
    tick_dt = 1.0
    sums: dict[str, float] = {}
    ended = False

    def flush() -> None:
        if tick_ts is None:
            return
        for name in SUM_MAPS:
            kind, what = name.split("_")
            value = sums.get(name, 0.0)
            unit = "B" if what == "bytes" else "count"
            store.add(host, -1, SOURCE, f"io.{kind}.{what}", unit, tick_ts, value)
            if what == "bytes":
                store.add(host, -1, SOURCE, f"io.{kind}.bytes_rate", "B/s", tick_ts, value / tick_dt)
        stats.records += len(SUM_MAPS)
        sums.clear()

    for raw in iter_lines(path, stats):
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
                    flush()
                    tick_dt = (ns - prev_ns) / 1e9 if prev_ns is not None and ns > prev_ns else 1.0
                    tick_ts = clock.host(ns / 1e9 + realtime_minus_boottime)
                elif word == "end":
                    ended = True
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
    flush()
    return res


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
