"""`io.*` series of a host's bpftrace trace: its compact form (`bpftrace.f64` and
`bpftrace.totals.json`) when the agent wrote one, else the verbatim `bpftrace.jsonl` through
`labctl.formats.bpftrace.Trace`.

Wall time = nsecs/1e9 + (CLOCK_REALTIME − CLOCK_BOOTTIME) from `bpftrace.meta.json`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labctl.analysis.clock import HostClock
from labctl.analysis.lines import ParseStats, iter_lines
from labctl.analysis.rawfile import open_raw, read_record
from labctl.analysis.series import SeriesStore
from labctl.formats.bpftrace import COMPACT, SUM_MAPS, TICK_COLUMNS, Trace

SOURCE = "bpftrace"


@dataclass
class BpfResult:
    """What the trace holds besides the per-second series."""

    stats: ParseStats
    by_comm: dict[str, Counter[str]] = field(default_factory=dict)  # map -> comm -> run total
    hists: dict[str, Counter[tuple[int | None, int | None]]] = field(default_factory=dict)
    opens: list[dict[str, object]] = field(default_factory=list)  # @ckpt_open: ts, comm, path, count
    lost_events: int = 0
    probes: int | None = None


def parse_bpftrace(path: Path, host: str, store: SeriesStore, clock: HostClock,
                   realtime_minus_boottime: float) -> BpfResult:
    """Parse one trace into `io.<kind>.bytes|calls` (per interval) and `io.<kind>.bytes_rate` (B/s) series,
    one sample per tick."""
    stats = ParseStats(SOURCE, str(path))
    open_raw(path).close()  # the evidence: refused by name unless a regular file
    got = _compact(path, stats)
    if got is None:
        trace = Trace(stats)
        for raw in iter_lines(path, stats):
            trace.line(raw)
        trace.close()
        ns = np.array(trace.ticks, dtype=np.int64)
        sums = {m: np.array(trace.sums[m], dtype=np.float64) for m in SUM_MAPS}
    else:
        trace, ns, sums = got
    offset = realtime_minus_boottime
    res = BpfResult(stats, trace.by_comm, trace.hists,
                    [{"ts": clock.host(t / 1e9 + offset), "comm": c, "path": p, "count": n}
                     for t, c, p, n in trace.opens], trace.lost_events, trace.probes)
    if ns.size:
        ticks = clock.host_in_place(ns / 1e9 + offset)
        dts = _intervals(ns, trace.start)
        for name in SUM_MAPS:
            kind, what = name.split("_")
            store.extend(host, -1, SOURCE, f"io.{kind}.{what}", "B" if what == "bytes" else "count", ticks,
                         sums[name])
            if what == "bytes":
                store.extend(host, -1, SOURCE, f"io.{kind}.bytes_rate", "B/s", ticks, sums[name] / dts)
        stats.records = ticks.size * len(SUM_MAPS)
    return res


def _compact(path: Path, stats: ParseStats) -> tuple[Trace, np.ndarray, dict[str, np.ndarray]] | None:
    """The trace, its ticks (ns) and per-tick sums from the agent's compact files; None (nothing counted)
    when there are none or they do not agree with each other."""
    ticks, totals = (path.with_name(name) for name in COMPACT)
    if not (ticks.exists() and totals.exists()):
        return None
    try:
        with open_raw(totals) as fh:
            doc = json.loads(fh.read())
        trace = Trace.from_totals(doc)
        lines, skipped = int(doc["lines"]), {str(k): int(v) for k, v in doc["skipped"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    got = read_record(ticks, TICK_COLUMNS)
    t = dict(zip(*got, strict=True)) if got is not None else None
    if t is None or len(t["ns"]) != doc["ticks"] or np.isnan(t["ns"]).any():
        return None
    stats.lines = lines
    for reason, n in skipped.items():
        stats.skip(reason, n)
    return trace, t["ns"].astype(np.int64), {m: t[m] for m in SUM_MAPS}


def _intervals(ns: np.ndarray, prev: int | None) -> np.ndarray:
    """Seconds since the previous tick (or the marker before the first); 1.0 where that is unknown or not
    positive."""
    step = np.empty_like(ns)
    step[1:] = ns[:-1]
    step[0] = prev if prev is not None else 0
    unknown = ns <= step
    if prev is None:
        unknown[0] = True
    seconds = (ns - step) / 1e9
    seconds[unknown] = 1.0
    return seconds
