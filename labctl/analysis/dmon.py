"""`nvidia-smi dmon` text output: columns come from the `#` header lines, re-bound wherever they appear."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labctl.analysis.clock import HostClock
from labctl.analysis.lines import ParseStats, iter_text
from labctl.analysis.rawfile import open_raw, read_record
from labctl.analysis.series import SeriesStore
from labctl.formats.dmon import samples

SOURCE = "dmon"
# unit in dmon's header -> (timeline unit, factor)
_UNITS: dict[str, tuple[str, float]] = {
    "W": ("W", 1.0), "C": ("C", 1.0), "%": ("%", 1.0), "MHz": ("MHz", 1.0), "bool": ("bool", 1.0),
    "MB": ("B", 2.0**20), "MB/s": ("B/s", 1e6), "errs": ("count", 1.0),
    "GPM:%": ("%", 1.0), "GPM:MiB/s": ("B/s", 2.0**20),
}


def parse_dmon(path: Path, host: str, store: SeriesStore, clock: HostClock, *,
               start_ts: float | None = None, interval_s: float = 1.0) -> ParseStats:
    """Parse one dmon log into `gpu.<column>` series (one per GPU index): from the agent's `dmon.f64` when
    there is a usable one, else from the log (`labctl.formats.dmon.samples`, same series).

    Rows carry their own `Date Time` (host local time) with `-o DT`; without it, samples are numbered by GPU
    index wrap-around and placed at `start_ts + n * interval_s` (no start: not placed, `no_timestamp`).
    """
    open_raw(path).close()  # the evidence: refused by name unless a regular file
    compact = path.with_name("dmon.f64")
    if compact.exists() and (stats := _from_record(compact, host, store, clock)) is not None:
        return stats
    stats = ParseStats(SOURCE, str(path))
    sample, last_gpu = -1, 10**9
    placed: list[tuple[float, int, list[tuple[str, float]]]] = []
    for ts, gpu, cells in samples(iter_text(path, stats), stats):
        if ts is not None:
            placed.append((clock.local(ts), gpu, cells))
            continue
        sample += gpu <= last_gpu
        last_gpu = gpu
        if start_ts is None:
            stats.skip("no_timestamp")
        else:
            placed.append((clock.host(start_ts + sample * interval_s), gpu, cells))
    columns = list(dict.fromkeys(key for _, _, cells in placed for key, _ in cells))
    at = {c: i for i, c in enumerate(columns)}
    grid = np.full((len(placed), len(columns)), np.nan)
    for r, (_, _, cells) in enumerate(placed):
        for key, value in cells:
            grid[r, at[key]] = value
    ts, idx = np.array([p[0] for p in placed], dtype=float), np.array([p[1] for p in placed], dtype=np.int64)
    _store(ts, idx, {c: grid[:, i] for i, c in enumerate(columns)}, host, store, stats)
    return stats


def _from_record(path: Path, host: str, store: SeriesStore, clock: HostClock) -> ParseStats | None:
    """The series of the agent's `dmon.f64`; None when it cannot be used."""
    got = read_record(path)
    if got is None or got[0][:2] != ("ts", "gpu") or np.isnan(got[1][:2]).any():
        return None
    names, table = got
    stats = ParseStats(SOURCE, str(path), lines=table.shape[1] + 1)
    columns = dict(zip(names[2:], table[2:], strict=True))
    _store(clock.local(table[0]), table[1].astype(np.int64), columns, host, store, stats)
    return stats


def _store(ts: np.ndarray, idx: np.ndarray, columns: dict[str, np.ndarray], host: str, store: SeriesStore,
           stats: ParseStats) -> None:
    """Rows at `ts` of GPUs `idx`, values by `name:unit` column (NaN: none) into `gpu.<name>` series; a sample
    (a run of one ts) that is not the last and lacks GPUs seen before it ended is counted `short_sample`."""
    order = np.argsort(idx, kind="stable")  # each GPU's rows together, in their order
    gpus, firsts = np.unique(idx[order], return_index=True)
    bounds = np.append(firsts, idx.size).tolist()
    runs = list(zip(gpus.tolist(), bounds[:-1], bounds[1:], strict=True))
    ts_by_gpu = ts[order]
    for column, values in columns.items():
        name, _, dmon_unit = column.partition(":")
        unit, factor = _UNITS.get(dmon_unit, ("", 1.0))
        by_gpu = values[order] * factor
        for g, a, b in runs:
            at, part = ts_by_gpu[a:b], by_gpu[a:b]
            given = ~np.isnan(part)
            if not given.all():
                at, part = at[given], part[given]
            if part.size:
                store.extend(host, g, SOURCE, f"gpu.{name}", unit, at, part)
                stats.records += part.size
    if not ts.size:
        return
    starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
    first_seen = np.zeros(ts.size, dtype=np.int64)
    first_seen[np.unique(idx, return_index=True)[1]] = 1
    ends = np.r_[starts[1:], ts.size]
    stats.skip("short_sample", int(np.sum((ends - starts < np.cumsum(first_seen)[ends - 1])[:-1])))
