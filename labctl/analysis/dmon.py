"""`nvidia-smi dmon` text output: columns come from the `#` header lines, re-bound wherever they appear."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labctl.analysis.clock import HostClock
from labctl.analysis.lines import ParseStats, iter_text
from labctl.analysis.rawfile import open_raw
from labctl.analysis.series import Series, SeriesStore
from labctl.formats.dmon import naive_time, rows

SOURCE = "dmon"
# unit in dmon's header -> (timeline unit, factor)
_UNITS: dict[str, tuple[str, float]] = {
    "W": ("W", 1.0), "C": ("C", 1.0), "%": ("%", 1.0), "MHz": ("MHz", 1.0), "bool": ("bool", 1.0),
    "MB": ("B", 2.0**20), "MB/s": ("B/s", 1e6), "errs": ("count", 1.0),
    "GPM:%": ("%", 1.0), "GPM:MiB/s": ("B/s", 2.0**20),
}
_SKIP_COLS = {"Date", "Time", "gpu"}


def parse_dmon(path: Path, host: str, store: SeriesStore, clock: HostClock, *,
               start_ts: float | None = None, interval_s: float = 1.0) -> ParseStats:
    """Parse one dmon log into `gpu.<column>` series (one per GPU index).

    Rows carry their own `Date Time` (host local time) with `-o DT`; without it, samples are numbered by GPU
    index wrap-around and placed at `start_ts + n * interval_s`. Rows whose token count differs from the
    header's (a `^C` mid-line), `-` values and unparsable numbers produce no record and are counted.
    """
    open_raw(path).close()  # the evidence: refused by name unless a regular file
    csv = path.with_name("dmon.csv")
    if csv.exists() and (stats := _compact(csv, host, store, clock)) is not None:
        return stats
    stats = ParseStats(SOURCE, str(path))
    kept = []  # rows with as many tokens as their header has names
    for r in rows(iter_text(path, stats)):
        if r is None or len(r[2]) != len(r[0]):
            stats.skip("no_header" if r is None else "column_count")
        else:
            kept.append(r)
    _rows(kept, host, store, clock, stats, start_ts, interval_s)
    return stats


def _rows(kept: list[tuple[list[str], list[str], list[str]]], host: str, store: SeriesStore, clock: HostClock,
          stats: ParseStats, start_ts: float | None, interval_s: float) -> None:
    """The reference parse, a row at a time."""
    sample = -1
    last_idx = 10**9
    last_stamp = ""
    rows_in_sample = 0
    gpus_seen: set[int] = set()
    short_samples = 0
    day_cache: dict[str, int] = {}
    series: dict[tuple[int, str, str], Series] = {}  # this parse's series, each looked up once
    for names, units, toks in kept:
        row = dict(zip(names, toks, strict=True))
        try:
            idx = int(row["gpu"])
        except ValueError:
            stats.skip("bad_gpu_index")
            continue
        if "Date" in row and "Time" in row:
            stamp = row["Date"] + row["Time"]
            ts = naive_time(row["Date"], row["Time"], day_cache)
            if ts is None:
                stats.skip("bad_timestamp")
                continue
            ts = clock.local(ts)
            new_sample = stamp != last_stamp
            last_stamp = stamp
        else:
            new_sample = idx <= last_idx
            if new_sample:
                sample += 1
            if start_ts is None:
                stats.skip("no_timestamp")
                last_idx = idx
                continue
            ts = clock.host(start_ts + sample * interval_s)
        if new_sample:
            if rows_in_sample and gpus_seen and rows_in_sample < len(gpus_seen):
                short_samples += 1
            rows_in_sample = 0
        rows_in_sample += 1
        last_idx = idx
        gpus_seen.add(idx)
        for i, name in enumerate(names):
            tok = toks[i]
            if tok == "-" or name in _SKIP_COLS:
                continue
            try:
                value = float(tok)
            except ValueError:
                stats.skip("bad_value")
                continue
            unit, factor = _UNITS.get(units[i] if i < len(units) else "", ("", 1.0))
            key = (idx, name, unit)
            if (s := series.get(key)) is None:
                s = series[key] = store.series_for(host, idx, SOURCE, f"gpu.{name}", unit)
            s.ts.append(ts)
            s.values.append(value * factor)
            stats.records += 1
    if short_samples:
        stats.skip("short_sample", short_samples)


def _compact(path: Path, host: str, store: SeriesStore, clock: HostClock) -> ParseStats | None:
    """The series `_rows` gives, from the agent's `dmon.csv` (pyarrow, a column at a time); None when it
    cannot be used."""
    from labctl.analysis.compact import read_table

    t = read_table(path, None)
    if t is None or list(t)[:2] != ["ts", "gpu"] or np.isnan(t["ts"]).any() or np.isnan(t["gpu"]).any():
        return None
    stats = ParseStats(SOURCE, str(path), lines=len(t["ts"]) + 1)
    ts, idx = clock.local(t["ts"]), t["gpu"].astype(np.int64)
    gpus = np.unique(idx).tolist()
    for column in list(t)[2:]:
        name, _, dmon_unit = column.partition(":")
        unit, factor = _UNITS.get(dmon_unit, ("", 1.0))
        given = ~np.isnan(t[column])
        for g in gpus:
            mine = given & (idx == g)
            if mine.any():
                store.extend(host, g, SOURCE, f"gpu.{name}", unit, ts[mine], t[column][mine] * factor)
                stats.records += int(mine.sum())
    # samples (runs of one ts): one that is not the last and lacks GPUs seen before it ended is short
    starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]]) if ts.size else np.zeros(0, dtype=np.int64)
    first_seen = np.zeros(ts.size, dtype=np.int64)
    first_seen[np.unique(idx, return_index=True)[1]] = 1
    ends = np.r_[starts[1:], ts.size]
    stats.skip("short_sample", int(np.sum((ends - starts < np.cumsum(first_seen)[ends - 1])[:-1])))
    return stats
