"""The aligned 1 s timeline: every series binned onto whole UTC seconds, written as Parquet.

Bin `b` holds the samples whose timestamp (the end of their interval) lies in [b, b+1): per-interval
counters (`*.bytes`, `*.calls`, retrans/timeouts/errors) are summed, gauges and rates are averaged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from labctl.analysis.series import Series, SeriesKey, SeriesStore

if TYPE_CHECKING:
    import pyarrow as pa

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


@dataclass
class _Grouping:
    """How one timestamp array falls into seconds: the sort order (None: already sorted), where each second's
    samples start and how many there are (both None when every sample has a second of its own, in order: a
    1 s log), and the seconds."""

    order: np.ndarray | None
    starts: np.ndarray | None
    counts: np.ndarray | None
    secs: np.ndarray


def _grouping(ts: np.ndarray) -> _Grouping:
    secs = np.floor(ts).astype(np.int64)
    if secs.size < 2 or bool(np.all(secs[1:] > secs[:-1])):
        return _Grouping(None, None, None, secs)
    order = None
    if np.any(secs[1:] < secs[:-1]):
        order = np.argsort(secs, kind="stable")
        secs = secs[order]
    starts = np.flatnonzero(np.r_[True, secs[1:] != secs[:-1]])
    return _Grouping(order, starts, np.diff(np.r_[starts, secs.size]), secs[starts])


def bin_series(metric: str, s: Series, grouping: _Grouping | None = None) -> Binned:
    """Bin one series to 1 s (sum or mean, see module doc); `grouping` is that of its timestamps, if known."""
    g = grouping or _grouping(np.frombuffer(s.ts, dtype=np.float64))
    vals = np.frombuffer(s.values, dtype=np.float64)
    if g.starts is None:  # a sample a second: its sum and its mean are itself
        return Binned(s.unit, g.secs, vals.copy())
    if g.order is not None:
        vals = vals[g.order]
    sums = np.add.reduceat(vals, g.starts)
    return Binned(s.unit, g.secs, sums if is_summed(metric) else sums / g.counts)


def bin_store(store: SeriesStore) -> dict[SeriesKey, Binned]:
    """Every series of the store on the 1 s grid."""
    return bin_all(store.series)


def bin_all(series: Mapping[SeriesKey, Series]) -> dict[SeriesKey, Binned]:
    """These series on the 1 s grid. Series with the same timestamps (the trace's eight share one array; a
    log's metrics mostly come at the same instants) are grouped into seconds once."""
    seen: dict[tuple[int, float, float], list[tuple[np.ndarray, _Grouping]]] = {}
    out = {}
    for key, s in series.items():
        ts = np.frombuffer(s.ts, dtype=np.float64)
        same = seen.setdefault((ts.size, ts[0], ts[-1]) if ts.size else (0, 0.0, 0.0), [])
        g = next((g for other, g in same if np.array_equal(other, ts)), None)
        if g is None:
            g = _grouping(ts)
            same.append((ts, g))
        out[key] = bin_series(key[3], s, g)
    return out


ROWS_PER_GROUP = 1 << 20  # rows per Parquet row group; the table is built and written a group at a time


def _dictionaries(binned: dict[SeriesKey, Binned]) -> dict[str, list[str]]:
    """The values of each text column over these series (the dictionary of the row groups written with
    them)."""
    return {"host": sorted({k[0] for k in binned}), "source": sorted({k[2] for k in binned}),
            "metric": sorted({k[3] for k in binned}), "unit": sorted({b.unit for b in binned.values()})}


class Scratch:
    """Column buffers reused by the row groups of one writer, so that each group's 5 × 8 bytes a row are not
    fresh memory (page faults) again. A table built on them views them: write it before building the next."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def take(self, name: str, dtype: type, n: int) -> np.ndarray:
        """The buffer `name`, `n` items long (contents undefined)."""
        a = self._arrays.get(name)
        if a is None or a.size < n:
            a = self._arrays[name] = np.empty(n, dtype=dtype)
        return a[:n]


def to_table(binned: dict[SeriesKey, Binned], keys: list[SeriesKey] | None = None,
             dictionaries: dict[str, list[str]] | None = None, scratch: Scratch | None = None) -> pa.Table:
    """The long-format timeline table (columns host, gpu, source, metric, value, unit, ts) of `keys` (default:
    every series, in key order), rows grouped by series. Each series is one run of rows, so the text columns
    are dictionary-encoded by filling each series' run with its code (no hashing of 5 M strings). With
    `scratch` the columns are built in its buffers (see Scratch), else in new ones."""
    import pyarrow as pa

    keys = sorted(binned) if keys is None else keys
    dictionaries = dictionaries or _dictionaries(binned)
    bounds = np.cumsum([0] + [binned[k].secs.size for k in keys]).tolist()
    rows = bounds[-1]
    scratch = scratch or Scratch()

    def runs(name: str, dtype: type, per_series: list) -> np.ndarray:  # each series' run of one value
        out = scratch.take(name, dtype, rows)
        for a, b, v in zip(bounds, bounds[1:], per_series, strict=False):
            out[a:b] = v
        return out

    def dict_col(col: str, per_series: list[str]) -> pa.DictionaryArray:
        code = {name: i for i, name in enumerate(dictionaries[col])}
        codes = runs(col, np.int32, [code[v] for v in per_series])  # int32: one type for every row group
        return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(dictionaries[col], pa.string()),
                                              safe=False)  # codes made here, all in range: no bounds scan

    def cat(name: str, parts: list[np.ndarray], dtype: type) -> np.ndarray:
        out = scratch.take(name, dtype, rows)
        if parts:
            np.concatenate(parts, out=out)
        return out

    gpu = runs("gpu", np.int16, [k[1] for k in keys])
    valid = np.packbits(runs("valid", np.bool_, [k[1] >= 0 for k in keys]), bitorder="little")
    columns = {
        "host": dict_col("host", [k[0] for k in keys]),
        "gpu": pa.Array.from_buffers(pa.int16(), rows, [pa.py_buffer(valid), pa.py_buffer(gpu)]),
        "source": dict_col("source", [k[2] for k in keys]),
        "metric": dict_col("metric", [k[3] for k in keys]),
        "value": pa.array(cat("value", [binned[k].values for k in keys], np.float64), pa.float64()),
        "unit": dict_col("unit", [binned[k].unit for k in keys]),
        "ts": pa.array(cat("ts", [binned[k].secs for k in keys], np.int64),
                       pa.timestamp("s", tz="UTC")),  # the int64 seconds as they are (no cast, no copy)
    }
    # only gpu may be null (host-level metrics); the rest is declared not null: no definition levels to write
    schema = pa.schema([pa.field(name, col.type, nullable=name == "gpu") for name, col in columns.items()])
    return pa.Table.from_arrays(list(columns.values()), schema=schema)


def _groups(binned: dict[SeriesKey, Binned]) -> list[list[SeriesKey]]:
    """Consecutive series (in key order) of up to ROWS_PER_GROUP rows together (a longer series alone)."""
    groups: list[list[SeriesKey]] = [[]]
    rows = 0
    for key in sorted(binned):
        n = binned[key].secs.size
        if groups[-1] and rows + n > ROWS_PER_GROUP:
            groups.append([])
            rows = 0
        groups[-1].append(key)
        rows += n
    return groups


# Dictionary pages for the text columns only (hashing 5 M values and timestamps costs more than it saves),
# delta encoding for the seconds (ascending within each series), statistics where readers filter (time, GPU),
# values encoded 64 K at a time (the default 1 K repeats per-batch work 64 times as often: ~7 % of the write),
# LZ4 pages (a fifth less encoding time than zstd; the benchmark's 5 M rows take 250 kB instead of 180 kB).
WRITE_OPTIONS = {"compression": "lz4", "use_dictionary": ["host", "source", "metric", "unit"],
                 "column_encoding": {"ts": "DELTA_BINARY_PACKED"}, "write_statistics": ["ts", "gpu"],
                 "write_batch_size": 1 << 16}


class TimelineWriter:
    """`timeline.parquet`, written as binned series become ready (a row group at a time, small reused buffers)
    and put in place, atomically, by `close`. Each row group has its own dictionaries."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_suffix(".parquet.tmp")
        self.rows = 0
        self._writer = None
        self._scratch = Scratch()

    def write(self, binned: dict[SeriesKey, Binned]) -> None:
        """Append these series (in key order)."""
        dictionaries = _dictionaries(binned)
        for keys in _groups(binned):
            table = to_table(binned, keys, dictionaries, self._scratch)
            if table.num_rows:
                self._write(table)

    def _write(self, table: pa.Table) -> None:
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(self.tmp, table.schema, **WRITE_OPTIONS)
        self._writer.write_table(table, row_group_size=ROWS_PER_GROUP)
        self.rows += table.num_rows

    def close(self) -> int:
        """Finish the file (an empty one has the schema and no rows) and move it into place; returns its row
        count."""
        if self._writer is None:
            self._write(to_table({}))
        self._writer.close()  # type: ignore[union-attr]
        self.tmp.replace(self.path)
        return self.rows

    def abort(self) -> None:
        """Drop the unfinished file (after an error)."""
        if self._writer is not None:
            self._writer.close()
        self.tmp.unlink(missing_ok=True)


def write_timeline(binned: dict[SeriesKey, Binned], path: Path) -> int:
    """Write `timeline.parquet` atomically; returns the row count."""
    writer = TimelineWriter(path)
    try:
        writer.write(binned)
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def warm_up() -> None:
    """Import pyarrow and its Parquet writer and build a one-row table, so that a thread can do it while the
    bundle is still being parsed."""
    import pyarrow.parquet  # noqa: F401

    to_table({("", -1, "", ""): Binned("", np.zeros(1, dtype=np.int64), np.zeros(1))})


def read_timeline(path: Path) -> pa.Table:
    """Read a timeline written by `write_timeline`."""
    import pyarrow.parquet as pq

    return pq.read_table(path)
