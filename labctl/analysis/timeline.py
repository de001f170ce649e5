"""The aligned 1 s timeline: every series binned onto whole UTC seconds, written as Parquet.

Bin `b` holds the samples whose timestamp (the end of their interval) lies in [b, b+1): per-interval
counters (`*.bytes`, `*.calls`, retrans/timeouts/errors) are summed, gauges and rates are averaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from labctl.analysis.series import Series, SeriesKey, SeriesStore

SUMMED_SUFFIXES = (".bytes", ".calls", ".retrans", ".timeouts", ".errors")
COLUMNS = ("host", "gpu", "source", "metric", "value", "unit", "ts")


def is_summed(metric: str) -> bool:
    """Whether a metric is a per-interval count (summed per bin) rather than a gauge or rate (averaged)."""
    return metric.endswith(SUMMED_SUFFIXES)


@dataclass
class Binned:
    """One series on whole seconds: sorted unique `secs` (int64 epoch) and their `values`."""

    unit: str
    secs: np.ndarray
    values: np.ndarray


def bin_series(metric: str, s: Series) -> Binned:
    """Bin one series to 1 s (sum or mean, see module doc)."""
    ts = np.frombuffer(s.ts, dtype=np.float64)
    vals = np.frombuffer(s.values, dtype=np.float64)
    secs = np.floor(ts).astype(np.int64)
    if secs.size > 1 and np.any(secs[1:] < secs[:-1]):
        order = np.argsort(secs, kind="stable")
        secs, vals = secs[order], vals[order]
    if secs.size == 0:
        return Binned(s.unit, secs, vals.copy())
    starts = np.flatnonzero(np.r_[True, secs[1:] != secs[:-1]])
    sums = np.add.reduceat(vals, starts)
    if not is_summed(metric):
        counts = np.diff(np.r_[starts, secs.size])
        sums = sums / counts
    return Binned(s.unit, secs[starts], sums)


def bin_store(store: SeriesStore) -> dict[SeriesKey, Binned]:
    """Every series of the store on the 1 s grid."""
    return {key: bin_series(key[3], s) for key, s in store.series.items()}


def to_table(binned: dict[SeriesKey, Binned]) -> pa.Table:
    """The long-format timeline table (columns host, gpu, source, metric, value, unit, ts)."""
    keys = sorted(binned)
    names: dict[str, list[str]] = {"host": [], "source": [], "metric": [], "unit": []}
    codes: dict[str, list[np.ndarray]] = {k: [] for k in names}
    lookup: dict[str, dict[str, int]] = {k: {} for k in names}
    gpus, values, secs = [], [], []
    for key in keys:
        b = binned[key]
        n = b.secs.size
        for col, val in (("host", key[0]), ("source", key[2]), ("metric", key[3]), ("unit", b.unit)):
            idx = lookup[col].setdefault(val, len(names[col]))
            if idx == len(names[col]):
                names[col].append(val)
            codes[col].append(np.full(n, idx, dtype=np.int32))
        gpus.append(np.full(n, key[1], dtype=np.int16))
        values.append(b.values)
        secs.append(b.secs)

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    def dict_col(col: str) -> pa.DictionaryArray:
        indices = pa.array(cat(codes[col], np.int32))
        return pa.DictionaryArray.from_arrays(indices, pa.array(names[col], pa.string()))

    gpu = cat(gpus, np.int16)
    return pa.table({
        "host": dict_col("host"),
        "gpu": pa.array(gpu, mask=gpu < 0, type=pa.int16()),
        "source": dict_col("source"),
        "metric": dict_col("metric"),
        "value": pa.array(cat(values, np.float64), pa.float64()),
        "unit": dict_col("unit"),
        "ts": pa.array(cat(secs, np.int64), pa.int64()).cast(pa.timestamp("s", tz="UTC")),
    })


def write_timeline(binned: dict[SeriesKey, Binned], path: Path) -> int:
    """Write `timeline.parquet` atomically; returns the row count."""
    table = to_table(binned)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    return table.num_rows


def read_timeline(path: Path) -> pa.Table:
    """Read a timeline written by `write_timeline`."""
    return pq.read_table(path)
