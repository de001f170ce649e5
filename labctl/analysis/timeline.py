"""The aligned 1 s timeline: every series binned onto whole UTC seconds, written as Parquet.

Bin `b` holds the samples whose timestamp (the end of their interval) lies in [b, b+1): per-interval
counters (`*.bytes`, `*.calls`, retrans/timeouts/errors) are summed, gauges and rates are averaged.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from labctl.analysis.series import Series, SeriesKey

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
    if g.starts is None:  # a sample a second: its sum and its mean are itself (read-only: shared)
        vals.flags.writeable = False
        return Binned(s.unit, g.secs, vals)
    if g.order is not None:
        vals = vals[g.order]
    sums = np.add.reduceat(vals, g.starts)
    return Binned(s.unit, g.secs, sums if is_summed(metric) else sums / g.counts)


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


ROWS_PER_GROUP = 1 << 20  # rows per Parquet row group
# Dictionary pages for the text columns only, delta encoding for the seconds (ascending within each series),
# the values' bytes split by significance (they compress better, and it is faster), statistics where readers
# filter (time, GPU), LZ4 pages.
WRITE_OPTIONS = {"compression": "lz4", "use_dictionary": ["host", "source", "metric", "unit"],
                 "column_encoding": {"ts": "DELTA_BINARY_PACKED", "value": "BYTE_STREAM_SPLIT"},
                 "write_statistics": ["ts", "gpu"]}


def to_table(binned: dict[SeriesKey, Binned]) -> pa.Table:
    """The long-format timeline table (columns host, gpu, source, metric, value, unit, ts), one run of rows
    per series in key order: the text columns dictionary-encoded (each run filled with its code), the values
    and seconds the series' own arrays (no copy)."""
    import pyarrow as pa

    keys = sorted(binned)
    sizes = np.array([binned[k].secs.size for k in keys], dtype=np.int64)

    def runs(per_series: list, dtype: type) -> np.ndarray:  # each series' value over its run of rows
        if len(set(per_series)) == 1:
            return np.full(int(sizes.sum()), per_series[0], dtype=dtype)
        return np.repeat(np.array(per_series, dtype=dtype), sizes)

    def dict_col(per_series: list[str]) -> pa.DictionaryArray:
        names = sorted(set(per_series))
        code = {name: i for i, name in enumerate(names)}
        return pa.DictionaryArray.from_arrays(pa.array(runs([code[v] for v in per_series], np.int32)),
                                              pa.array(names, pa.string()))

    def chunks(arrays: list[np.ndarray], kind: pa.DataType) -> pa.ChunkedArray:  # views of the arrays
        return pa.chunked_array([pa.Array.from_buffers(kind, a.size, [None, pa.py_buffer(a)])
                                 for a in arrays], kind)

    gpus = [k[1] for k in keys]
    host_level = [g < 0 for g in gpus]
    gpu = pa.nulls(int(sizes.sum()), pa.int16()) if all(host_level) else pa.array(
        runs(gpus, np.int16), pa.int16(), mask=runs(host_level, np.bool_) if any(host_level) else None)
    columns = {
        "host": dict_col([k[0] for k in keys]),
        "gpu": gpu,
        "source": dict_col([k[2] for k in keys]),
        "metric": dict_col([k[3] for k in keys]),
        "value": chunks([np.ascontiguousarray(binned[k].values, np.float64) for k in keys], pa.float64()),
        "unit": dict_col([binned[k].unit for k in keys]),
        "ts": chunks([np.ascontiguousarray(binned[k].secs, np.int64) for k in keys],
                     pa.timestamp("s", tz="UTC")),
    }
    # only gpu may be null (host-level metrics); the rest is declared not null: no definition levels to write
    schema = pa.schema([pa.field(name, col.type, nullable=name == "gpu") for name, col in columns.items()])
    return pa.Table.from_arrays(list(columns.values()), schema=schema)


def informative(binned: dict[SeriesKey, Binned]) -> dict[SeriesKey, Binned]:
    """The series the timeline holds: all but those 0 throughout (counters that never moved: ops the run
    never issued, retrans, errors, an idle encoder), whose absence means just that."""
    return {k: b for k, b in binned.items() if np.any(b.values != 0)}


class TimelineWriter:
    """timeline.parquet written on a second thread while the run is still being read: each batch of series
    (`put`, in the order given) becomes the next row groups (pyarrow encodes without the interpreter lock).
    `close` waits for the writing and returns the row count; on any failure nothing is left at `path`."""

    def __init__(self, path: Path) -> None:
        self.path, self.rows = path, 0
        self.batches: queue.SimpleQueue[dict[SeriesKey, Binned] | None] = queue.SimpleQueue()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._write, name="timeline.parquet")
        self.thread.start()

    def put(self, binned: dict[SeriesKey, Binned]) -> None:
        """Write these series next."""
        self.batches.put(binned)

    def close(self) -> int:
        """Wait until everything put is written; returns the row count.

        Raises:
            BaseException: what failed the writing (the file is removed).
        """
        self.batches.put(None)
        self.thread.join()
        if self.failure is not None:
            raise self.failure
        return self.rows

    def _write(self) -> None:
        import pyarrow.parquet as pq

        writer, done = None, False
        try:
            while (batch := self.batches.get()) is not None:
                table = to_table(batch)
                writer = writer or pq.ParquetWriter(self.path, table.schema, **WRITE_OPTIONS)
                if table.num_rows:
                    writer.write_table(table, row_group_size=ROWS_PER_GROUP)
                    self.rows += table.num_rows
            done = True
            (writer or pq.ParquetWriter(self.path, to_table({}).schema, **WRITE_OPTIONS)).close()
        except BaseException as exc:  # noqa: BLE001 - handed to close()
            self.failure = exc
            while not done and self.batches.get() is not None:  # so that close() is not left waiting
                pass
            self.path.unlink(missing_ok=True)

