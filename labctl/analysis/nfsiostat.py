"""`nfsiostat.*` series of a host: the compact `nfsiostat.csv` when the bundle has it (pyarrow), else the
verbatim `nfsiostat.log` through `labctl.formats.nfsiostat.Reader`."""

from __future__ import annotations

from array import array
from pathlib import Path

from labctl.analysis.clock import HostClock
from labctl.analysis.lines import ParseStats, iter_text
from labctl.analysis.series import SeriesStore
from labctl.formats.nfsiostat import Reader

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

    reader = Reader(sink, clock, stats, nconnect=nconnect, skip_first=skip_first)
    for line in iter_text(path, stats):
        reader.line(line)
    for metric, (unit, ts, values) in made.items():
        store.extend(host, -1, SOURCE, metric, unit, ts, values)
    return stats
