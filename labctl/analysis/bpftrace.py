"""`io.*` series of a host's `bpftrace.jsonl` (read by `labctl.formats.bpftrace.Trace`).

Wall time = nsecs/1e9 + (CLOCK_REALTIME − CLOCK_BOOTTIME) from `bpftrace.meta.json`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labctl.analysis.clock import HostClock
from labctl.analysis.lines import ParseStats, iter_lines
from labctl.analysis.series import SeriesStore
from labctl.formats.bpftrace import HIST_MAPS, SUM_MAPS, Trace

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
    """Parse one bpftrace JSON-lines file into `io.<kind>.bytes|calls` (per interval) and
    `io.<kind>.bytes_rate` (B/s) series, one sample per tick."""
    stats = ParseStats(SOURCE, str(path))
    trace = Trace(stats)
    for raw in iter_lines(path, stats):
        trace.line(raw)
    trace.close()
    offset = realtime_minus_boottime
    res = BpfResult(stats, {m: Counter() for m in SUM_MAPS}, {m: Counter() for m in HIST_MAPS},
                    [{"ts": clock.host(ns / 1e9 + offset), "comm": c, "path": p, "count": n}
                     for ns, c, p, n in trace.opens], trace.lost_events, trace.probes)
    for m in SUM_MAPS:
        res.by_comm[m].update(trace.by_comm[m])
    for m in HIST_MAPS:
        res.hists[m].update(trace.hists[m])
    if trace.ticks:
        ns = np.array(trace.ticks, dtype=np.int64)
        ticks = clock.host_in_place(ns / 1e9 + offset)
        dts = _intervals(ns, trace.start)
        for name in SUM_MAPS:
            kind, what = name.split("_")
            values = np.array(trace.sums[name], dtype=np.float64)
            unit = "B" if what == "bytes" else "count"
            store.extend(host, -1, SOURCE, f"io.{kind}.{what}", unit, ticks, values)
            if what == "bytes":
                store.extend(host, -1, SOURCE, f"io.{kind}.bytes_rate", "B/s", ticks, values / dts)
        stats.records = ticks.size * len(SUM_MAPS)
    return res


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
