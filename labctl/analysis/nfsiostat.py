"""`nfsiostat.*` series of a host: the agent's compact `nfsiostat.f64` when the bundle has it, else
the verbatim `nfsiostat.log` through `labctl.formats.nfsiostat.Reader`. The top `ops/s` comes from one
transport only: dropped (counted) when the mount has nconnect > 1."""

from __future__ import annotations

from array import array
from pathlib import Path

from labctl.analysis.clock import HostClock
from labctl.analysis.lines import ParseStats, iter_text
from labctl.analysis.rawfile import read_record
from labctl.analysis.series import SeriesStore
from labctl.formats import nfsiostat as fmt

SOURCE = "nfsiostat"


def parse_nfsiostat(path: Path, host: str, store: SeriesStore, clock: HostClock, *,
                    nconnect: int = 1, skip_first: bool = True) -> ParseStats:
    """Parse one nfsiostat log into `nfsiostat.<op>.*` series (see `Reader` for the rules)."""
    stats = ParseStats(SOURCE, str(path))
    made: dict[str, tuple[str, array, array]] = {}

    def sink(metric: str, unit: str, ts: float, value: float) -> None:
        col = made.get(metric)
        if col is None:
            col = made[metric] = (unit, array("d"), array("d"))
        col[1].append(ts)
        col[2].append(value)
        stats.records += 1

    reader = fmt.Reader(sink, clock, stats, nconnect=nconnect, skip_first=skip_first)
    for line in iter_text(path, stats):
        reader.line(line)
    for metric, (unit, ts, values) in made.items():
        store.extend(host, -1, SOURCE, metric, unit, ts, values)
    return stats


def read_nfsiostat_record(path: Path, host: str, store: SeriesStore, clock: HostClock, *,
                          nconnect: int = 1) -> ParseStats | None:
    """`nfsiostat.f64` into the series `parse_nfsiostat` gives its log; None when it cannot be used."""
    import numpy as np

    got = read_record(path, fmt.COLUMNS)
    if got is None:
        return None
    t = dict(zip(*got, strict=True))
    stats = ParseStats(SOURCE, str(path), lines=len(t["ts"]) + 1)
    ts = clock.host_in_place(t["ts"])
    for name, unit in fmt.UNITS.items():
        have = ~np.isnan(t[name])
        n = int(have.sum())
        if name == "rpc.ops_rate" and nconnect > 1:
            stats.skip("top_line_nconnect", n)
        elif n:
            every = n == have.size
            store.extend(host, -1, SOURCE, f"nfsiostat.{name}", unit, ts if every else ts[have],
                         t[name] if every else t[name][have])
            stats.records += n
    return stats
