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
    samples start, how many there are, and the seconds."""

    order: np.ndarray | None
    starts: np.ndarray
    counts: np.ndarray
    secs: np.ndarray


def _grouping(ts: np.ndarray) -> _Grouping:
    secs = np.floor(ts).astype(np.int64)
    order = None
    if secs.size > 1 and np.any(secs[1:] < secs[:-1]):
        order = np.argsort(secs, kind="stable")
        secs = secs[order]
    starts = np.flatnonzero(np.r_[True, secs[1:] != secs[:-1]]) if secs.size else np.zeros(0, dtype=np.int64)
    return _Grouping(order, starts, np.diff(np.r_[starts, secs.size]), secs[starts])


def bin_series(metric: str, s: Series, grouping: _Grouping | None = None) -> Binned:
    """Bin one series to 1 s (sum or mean, see module doc); `grouping` is that of its timestamps, if known."""
    g = grouping or _grouping(np.frombuffer(s.ts, dtype=np.float64))
    vals = np.frombuffer(s.values, dtype=np.float64)
    if g.order is not None:
        vals = vals[g.order]
    if g.starts.size == 0:
        return Binned(s.unit, g.secs, vals.copy())
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


def to_table(binned: dict[SeriesKey, Binned], keys: list[SeriesKey] | None = None,
             dictionaries: dict[str, list[str]] | None = None) -> pa.Table:
    """The long-format timeline table (columns host, gpu, source, metric, value, unit, ts) of `keys` (default:
    every series, in key order), rows grouped by series. Each series is one run of rows, so the text columns
    are dictionary-encoded by repeating each series' codes (no hashing of 5 M strings)."""
    import pyarrow as pa

    keys = sorted(binned) if keys is None else keys
    dictionaries = dictionaries or _dictionaries(binned)
    lengths = np.array([binned[k].secs.size for k in keys], dtype=np.int64)
    per_series = {"host": [k[0] for k in keys], "source": [k[2] for k in keys],
                  "metric": [k[3] for k in keys], "unit": [binned[k].unit for k in keys]}

    def dict_col(col: str) -> pa.DictionaryArray:
        names = dictionaries[col]
        code = {name: i for i, name in enumerate(names)}
        codes = np.array([code[v] for v in per_series[col]], dtype=np.int32)  # one type for every row group
        return pa.DictionaryArray.from_arrays(pa.array(np.repeat(codes, lengths)),
                                              pa.array(names, pa.string()))

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    gpu = np.repeat(np.array([k[1] for k in keys], dtype=np.int16), lengths)
    columns = {
        "host": dict_col("host"),
        "gpu": pa.array(gpu, mask=gpu < 0, type=pa.int16()),
        "source": dict_col("source"),
        "metric": dict_col("metric"),
        "value": pa.array(cat([binned[k].values for k in keys], np.float64), pa.float64()),
        "unit": dict_col("unit"),
        "ts": pa.array(cat([binned[k].secs for k in keys], np.int64), pa.int64()).cast(
            pa.timestamp("s", tz="UTC")),
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
# delta encoding for the seconds (ascending within each series), statistics where readers filter (time, GPU).
WRITE_OPTIONS = {"compression": "zstd", "use_dictionary": ["host", "source", "metric", "unit"],
                 "column_encoding": {"ts": "DELTA_BINARY_PACKED"}, "write_statistics": ["ts", "gpu"]}


class TimelineWriter:
    """`timeline.parquet`, written as binned series become ready (a row group at a time, small reused buffers)
    and put in place, atomically, by `close`. Each row group has its own dictionaries."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_suffix(".parquet.tmp")
        self.rows = 0
        self._writer = None

    def write(self, binned: dict[SeriesKey, Binned]) -> None:
        """Append these series (in key order)."""
        dictionaries = _dictionaries(binned)
        for keys in _groups(binned):
            table = to_table(binned, keys, dictionaries)
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
    """Import pyarrow and initialise what the writer uses (its compute kernels), so that a thread can do it
    while the bundle is still being parsed."""
    import pyarrow as pa
    import pyarrow.parquet  # noqa: F401

    pa.array(np.zeros(1, dtype=np.int64)).cast(pa.timestamp("s", tz="UTC"))


def read_timeline(path: Path) -> pa.Table:
    """Read a timeline written by `write_timeline`."""
    import pyarrow.parquet as pq

    return pq.read_table(path)
