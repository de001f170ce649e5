"""`nvidia-smi dmon` text output: columns come from the `#` header lines, re-bound wherever they appear."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labctl.analysis.clock import HostClock, naive_epoch
from labctl.analysis.lines import ParseStats, iter_text
from labctl.analysis.series import Series, SeriesStore
from labctl.formats.dmon import rows

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
    stats = ParseStats(SOURCE, str(path))
    kept = []  # rows with as many tokens as their header has names
    for r in rows(iter_text(path, stats)):
        if r is None or len(r[2]) != len(r[0]):
            stats.skip("no_header" if r is None else "column_count")
        else:
            kept.append(r)
    if not _columns(kept, host, store, clock, stats):
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
    day_cache: dict[str, float] = {}
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
            ts = _dt(row["Date"], row["Time"], day_cache)
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


def _columns(kept: list[tuple[list[str], list[str], list[str]]], host: str, store: SeriesStore,
             clock: HostClock, stats: ParseStats) -> bool:
    """`_rows`' result computed a column at a time, for a log whose every row has a GPU index, a valid
    Date/Time and numbers or `-` (what dmon writes); False, having stored nothing, for any other log."""
    if not kept or any(not {"Date", "Time", "gpu"} <= set(names) for names, _, _ in kept):
        return False
    day_cache: dict[str, float] = {}
    stamps = [(t[names.index("Date")], t[names.index("Time")]) for names, _, t in kept]
    epochs = {st: _dt(st[0], st[1], day_cache) for st in dict.fromkeys(stamps)}
    if None in epochs.values():
        return False
    gpus = [t[names.index("gpu")] for names, _, t in kept]
    if not all(g.isdigit() for g in gpus):
        return False
    ts_all = clock.local(np.array([epochs[st] for st in stamps]))
    idx_all = np.array(gpus, dtype=np.int64)
    out: dict[tuple[int, str], tuple[str, list[np.ndarray], list[np.ndarray]]] = {}
    start = 0
    while start < len(kept):  # runs of rows under one header
        names, units = kept[start][0], kept[start][1]
        end = start
        while end < len(kept) and kept[end][0] is names and kept[end][1] is units:
            end += 1
        cells = np.array([t for _, _, t in kept[start:end]], dtype=str)
        for i, name in enumerate(names):
            if name in _SKIP_COLS:
                continue
            col, ts, idx = cells[:, i], ts_all[start:end], idx_all[start:end]
            given = col != "-"
            try:
                values = col[given].astype(np.float64)
            except ValueError:
                return False
            unit, factor = _UNITS.get(units[i] if i < len(units) else "", ("", 1.0))
            for g in np.unique(idx[given]).tolist():
                mine = idx[given] == g
                entry = out.setdefault((g, name), (unit, [], []))
                entry[1].append(ts[given][mine])
                entry[2].append(values[mine] * factor)
        start = end
    for (g, name), (unit, ts_parts, value_parts) in out.items():
        values = np.concatenate(value_parts)
        store.extend(host, g, SOURCE, f"gpu.{name}", unit, np.concatenate(ts_parts), values)
        stats.records += values.size
    seen: set[int] = set()
    short = 0
    k = 0
    while k < len(stamps):  # samples (runs of one Date/Time): a short one lacks GPUs seen before it ended
        j = k
        while j < len(stamps) and stamps[j] == stamps[k]:
            j += 1
        seen.update(idx_all[k:j].tolist())
        short += j < len(stamps) and j - k < len(seen)
        k = j
    stats.skip("short_sample", short)
    return True


def _dt(date: str, time: str, cache: dict[str, float]) -> float | None:
    """`YYYYMMDD`, `HH:MM:SS` -> naive epoch seconds, or None when malformed."""
    base = cache.get(date)
    try:
        if base is None:
            if len(date) != 8:
                return None
            base = cache[date] = naive_epoch(int(date[:4]), int(date[4:6]), int(date[6:]), 0, 0, 0)
        hh, mm, ss = time.split(":")
        return base + int(hh) * 3600 + int(mm) * 60 + int(ss)
    except ValueError:
        return None
