"""The host agent's compact records (`mountstats.csv`, `nfsiostat.csv`), read with pyarrow: the same series
the verbatim logs give through their reference parsers (labctl.analysis.mountstats / .nfsiostat)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labctl.analysis.clock import HostClock
from labctl.analysis.lines import ParseStats
from labctl.analysis.mountstats import LATENCIES, MAX_BYTES_RATE, MAX_DELTA
from labctl.analysis.rawfile import open_raw
from labctl.analysis.series import SeriesStore
from labctl.formats import mountstats as fmt
from labctl.formats import nfsiostat as nfmt


def _table(path: Path, names: tuple[str, ...], text: tuple[str, ...] = ()) -> dict[str, np.ndarray] | None:
    """The CSV's columns as float64 arrays (NaN where empty); the `text` columns as (codes, names) of their
    dictionary; None when it is not a compact file of that shape."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {n: pa.dictionary(pa.int32(), pa.string()) if n in text else pa.float64() for n in names}
    with open_raw(path) as fh:  # a regular file, else refused by name
        try:
            table = pacsv.read_csv(fh, convert_options=pacsv.ConvertOptions(column_types=types))
        except (pa.ArrowInvalid, OSError):
            return None
    if tuple(table.column_names) != names:
        return None
    out = {}
    for n in names:
        col = table[n].combine_chunks()
        if n in text:
            out[n] = col.indices.to_numpy(zero_copy_only=False)
            out[n + ":names"] = np.array(col.dictionary.to_pylist(), dtype=object)
        else:
            out[n] = col.to_numpy(zero_copy_only=False)
    return out


def read_nfsiostat(path: Path, host: str, store: SeriesStore, clock: HostClock) -> ParseStats | None:
    """`nfsiostat.csv` into `nfsiostat.*` series; None when it cannot be used."""
    t = _table(path, nfmt.COLUMNS, ("metric", "unit"))
    if t is None:
        return None
    n = len(t["ts"])
    stats = ParseStats("nfsiostat", str(path), lines=n + 1, records=n)
    order = np.argsort(t["metric"], kind="stable")
    codes = t["metric"][order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if n else np.zeros(0, dtype=np.int64)
    ts = clock.host_in_place(t["ts"][order])
    values, units = t["value"][order], t["unit"][order]
    runs = sorted(zip(starts.tolist(), [*starts[1:].tolist(), n], strict=True), key=lambda ab: order[ab[0]])
    for a, b in runs:  # each metric's rows, in the order of its first row
        store.extend(host, -1, "nfsiostat", str(t["metric:names"][codes[a]]), str(t["unit:names"][units[a]]),
                     ts[a:b].copy(), values[a:b].copy())
    return stats


def read_mountstats(path: Path, host: str, store: SeriesStore, clock: HostClock) -> ParseStats | None:
    """`mountstats.csv` into the per-interval `nfs.*` series `interval_metrics` gives; None when unusable."""
    c = _table(path, fmt.COLUMNS)
    if c is None:
        return None
    stats = ParseStats("mountstats", str(path), lines=len(c["ts"]) + 1)
    d = {k: v[1:] - v[:-1] for k, v in c.items()}
    cur = {k: v[1:] for k, v in c.items()}
    dt = d["mono"]
    stats.skip("bad_interval", int(np.sum(dt <= 0)))
    db = np.stack([d[f"bytes{i}"] for i in range(8)]) if len(dt) else np.zeros((8, 0))
    reset = (dt > 0) & ((d["age"] < 0) | np.any(db < 0, axis=0))
    absurd = (dt > 0) & ~reset & (np.any(db > MAX_DELTA, axis=0) | (np.maximum(db[4], db[5]) / np.where(
        dt > 0, dt, 1) > MAX_BYTES_RATE))
    stats.skip("counter_reset", int(reset.sum()))
    stats.skip("absurd_delta", int(absurd.sum()))
    ok = (dt > 0) & ~reset & ~absurd
    ts, dt, db = clock.host_in_place(cur["ts"][ok].copy()), dt[ok], db[:, ok]
    d = {k: v[ok] for k, v in d.items()}
    cur = {k: v[ok] for k, v in cur.items()}
    out: list[tuple[str, str, np.ndarray, np.ndarray]] = []

    def add(metric: str, unit: str, values: np.ndarray, where: np.ndarray | None = None) -> None:
        out.append((metric, unit, ts, values) if where is None else (metric, unit, ts[where], values[where]))

    add("nfs.read.bytes", "B", db[4])
    add("nfs.write.bytes", "B", db[5])
    add("nfs.read.bytes_rate", "B/s", db[4] / dt)
    add("nfs.write.bytes_rate", "B/s", db[5] / dt)
    add("nfs.app_read.bytes_rate", "B/s", (db[0] + db[2]) / dt)
    add("nfs.app_write.bytes_rate", "B/s", (db[1] + db[3]) / dt)
    add("nfs.mmap_read.bytes_rate", "B/s", np.maximum(0, db[4] - db[0] - db[2]) / dt)
    retrans, timeouts, errors = np.zeros(len(dt)), np.zeros(len(dt)), np.zeros(len(dt))
    any_errors = np.zeros(len(dt), dtype=bool)
    for op in fmt.OPS:
        low = op.lower()
        d0 = d[f"{low}_ops"]
        any_errors |= ~np.isnan(cur[f"{low}_errors"])
        have = ~np.isnan(d0)
        bad = have & ((d0 < 0) | (d0 > MAX_DELTA))
        stats.skip("counter_reset", int(bad.sum()))
        good = have & ~bad
        add(f"nfs.{low}.ops_rate", "ops/s", d0 / dt, good)
        r = d[f"{low}_trans"] - d0
        retrans += np.where(good & (r >= 0) & (r < MAX_DELTA), r, 0)
        timeouts += np.where(good, np.maximum(np.nan_to_num(d[f"{low}_timeouts"]), 0), 0)
        e = d[f"{low}_errors"]
        errors += np.where(good & (e >= 0) & (e < MAX_DELTA), e, 0)
        if op in ("READ", "WRITE", "COMMIT"):
            busy = good & (d0 > 0)
            for idx, label in LATENCIES:
                x = d[f"{low}_{('queue', 'rtt', 'exe')[idx - 5]}"]
                fine = busy & (x >= 0) & (x < MAX_DELTA)
                stats.skip("absurd_delta", int((busy & ~fine).sum()))
                add(f"nfs.{low}.{label}", "ms", x / np.where(d0 > 0, d0, 1), fine)
    add("nfs.retrans", "count", retrans)
    add("nfs.timeouts", "count", timeouts)
    add("nfs.errors", "count", errors, any_errors)
    add("nfs.xprt.count", "count", cur["xprts"])
    same = (d["xprts"] == 0) & (d["xprt_sends"] >= 0)
    add("nfs.xprt.sends_rate", "ops/s", d["xprt_sends"] / dt, same)
    busy = same & (d["xprt_sends"] > 0) & (d["xprt_backlog"] >= 0)
    add("nfs.xprt.backlog_avg", "count", d["xprt_backlog"] / np.where(busy, d["xprt_sends"], 1), busy)
    events = (d["events"] == 0) & (cur["events"] > fmt.EV_FSYNC)
    add("nfs.fsync_rate", "ops/s", np.maximum(0, d["fsync"]) / dt, events)
    pnfs = events & (cur["events"] > fmt.EV_PNFS_WRITE)
    add("nfs.pnfs.read_dispatch_rate", "ops/s", np.maximum(0, d["pnfs_read"]) / dt, pnfs)
    add("nfs.pnfs.write_dispatch_rate", "ops/s", np.maximum(0, d["pnfs_write"]) / dt, pnfs)
    add("nfs.interval_s", "s", dt)
    for metric, unit, times, values in out:
        if times.size:
            store.extend(host, -1, "mountstats", metric, unit, np.ascontiguousarray(times, dtype=np.float64),
                         np.ascontiguousarray(values, dtype=np.float64))
            stats.records += times.size if metric != "nfs.interval_s" else 0
    return stats
