"""The 1 s timeline and its inputs: every binned value reaches timeline.parquet; series storage, alignment."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labctl.analysis.timeline import Binned, TimelineWriter


@pytest.mark.parametrize("rows_per_group", [1 << 20, 64])
def test_the_parquet_timeline_round_trips_every_binned_value(tmp_path, monkeypatch, rows_per_group):
    from labctl.analysis import timeline

    monkeypatch.setattr(timeline, "ROWS_PER_GROUP", rows_per_group)  # one row group, or many
    rng = np.random.default_rng(7)
    binned = {}
    for k in range(300):  # more metrics than an int8 dictionary index holds
        host, gpu = f"gpu{k % 3}", (k % 5) - 1
        secs = np.unique(rng.integers(1_795_959_000, 1_795_959_000 + 5000, size=int(rng.integers(0, 40))))
        binned[(host, gpu, ("dmon", "nfsiostat")[k % 2], f"m.{k}")] = Binned(("B", "%", "B/s")[k % 3], secs,
                                                                             rng.random(secs.size) * 1e9)
    path = tmp_path / "timeline.parquet"
    writer = TimelineWriter(path)
    writer.put(binned)
    assert writer.close() == sum(b.secs.size for b in binned.values())
    groups = pq.ParquetFile(path).num_row_groups
    rows = sum(b.secs.size for b in binned.values())
    assert groups == 1 if rows_per_group > 10_000 else groups == -(-rows // rows_per_group) > 20
    schema = pq.read_schema(path)
    assert [f.name for f in schema if f.nullable] == ["gpu"]  # host-level metrics have no GPU
    table = pq.read_table(path).to_pydict()
    got: dict = {}
    for host, gpu, source, metric, value, unit, ts in zip(*table.values(), strict=True):
        key = (host, -1 if gpu is None else gpu, source, metric)
        assert unit == binned[key].unit
        got.setdefault(key, []).append((int(ts.timestamp()), value))
    assert got == {k: list(zip(b.secs.tolist(), b.values.tolist(), strict=True))
                   for k, b in binned.items() if b.secs.size}


def test_values_at_given_seconds_are_zero_where_the_series_has_none():
    from labctl.analysis.metrics import _at

    b = Binned("ops/s", np.array([10, 12, 15]), np.array([1.0, 2.0, 3.0]))
    assert _at(b, np.array([9, 10, 11, 12, 15, 16])).tolist() == [0.0, 1.0, 0.0, 2.0, 3.0, 0.0]
    empty = Binned("ops/s", np.array([], dtype=np.int64), np.array([]))
    assert _at(empty, np.array([1, 2])).tolist() == [0.0, 0.0]


def test_a_new_series_takes_extended_buffers_over_and_copies_them_before_appending():
    from array import array

    from labctl.analysis.series import SeriesStore

    store = SeriesStore()
    ts, values = np.array([1.0, 2.0]), np.array([5.0, 6.0])
    store.extend("h", -1, "bpftrace", "io.read.bytes", "B", ts, values)
    store.extend("h", -1, "bpftrace", "io.read.calls", "count", ts, values * 2)
    s = store.get("h", -1, "bpftrace", "io.read.bytes")
    assert s.ts is ts and store.get("h", -1, "bpftrace", "io.read.calls").ts is ts  # shared, not copied
    store.add("h", -1, "bpftrace", "io.read.bytes", "B", 3.0, 7.0)
    store.extend("h", -1, "bpftrace", "io.read.bytes", "B", array("d", [4.0]), array("d", [8.0]))
    s = store.get("h", -1, "bpftrace", "io.read.bytes")
    assert (list(s.ts), list(s.values)) == ([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0])
    assert ts.tolist() == [1.0, 2.0]  # the handed-over buffer is untouched by the appends
    with pytest.raises(ValueError):
        store.extend("h", -1, "bpftrace", "x", "B", ts, np.array([1.0]))


def test_series_with_the_same_times_are_binned_as_each_alone():
    from labctl.analysis.series import SeriesStore
    from labctl.analysis.timeline import bin_all, bin_series

    store = SeriesStore()
    ts = np.array([10.2, 10.7, 12.1, 11.5, 11.9, 12.0])  # out of order: sorted once for both
    store.extend("h", -1, "bpftrace", "io.read.bytes", "B", ts, np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    rates = np.array([2.0, 4.0, 6.0, 8.0, 1.0, 3.0])
    store.extend("h", -1, "bpftrace", "io.read.bytes_rate", "B/s", ts, rates)
    store.extend("h", -1, "bpftrace", "io.write.bytes", "B", np.array([10.0]), np.array([7.0]))
    store.extend("h", -1, "mountstats", "nfs.read.bytes", "B", ts.copy(), rates)  # equal times, another array
    other = ts.copy()
    other[2] = 13.5  # the same size and ends, other times
    store.extend("h", -1, "mountstats", "nfs.write.bytes", "B", other, rates)
    binned = bin_all(store.series)
    assert binned[("h", -1, "bpftrace", "io.read.bytes")].values.tolist() == [3.0, 9.0, 9.0]  # sums
    assert binned[("h", -1, "bpftrace", "io.read.bytes_rate")].values.tolist() == [3.0, 4.5, 4.5]  # means
    for key, s in store.series.items():
        alone = bin_series(key[3], s)
        assert (binned[key].secs.tolist(), binned[key].values.tolist()) == (alone.secs.tolist(),
                                                                             alone.values.tolist())


@settings(max_examples=300, deadline=None)
@given(start=st.integers(1_795_959_000, 1_795_960_000),
       steps=st.one_of(st.lists(st.just(1.0), max_size=40),
                       st.lists(st.sampled_from([1.0, 0.0, 0.25, 0.5, 2.0, -1.0, 3.7]), max_size=40)),
       summed=st.booleans(), data=st.data())
def test_binning_sums_or_averages_each_second_as_its_plain_definition(start, steps, summed, data):
    """One sample a second in order (a 1 s log: taken as it is) or several, gaps, disorder (grouped)."""
    from labctl.analysis.series import Series
    from labctl.analysis.timeline import bin_series

    ts = start + 0.3 + np.cumsum([0.0, *steps])
    values = np.array(data.draw(st.lists(st.floats(-1e12, 1e12), min_size=ts.size, max_size=ts.size)))
    metric = "nfs.read.bytes" if summed else "nfs.read.bytes_rate"
    got = bin_series(metric, Series("B", ts.copy(), values.copy()))
    per_second: dict[int, list[float]] = {}
    for t, v in zip(ts.tolist(), values.tolist(), strict=True):
        per_second.setdefault(int(np.floor(t)), []).append(v)
    want = {sec: sum(vs) if summed else sum(vs) / len(vs) for sec, vs in sorted(per_second.items())}
    assert got.secs.tolist() == list(want)
    assert got.values.tolist() == pytest.approx(list(want.values()), rel=1e-12, abs=1e-3)


@settings(max_examples=200, deadline=None)
@given(series=st.lists(st.lists(st.one_of(st.integers(1_795_959_000, 1_795_999_000),
                                          st.integers(0, 2_000_000_000), st.integers(-10, 10)), max_size=60),
                       max_size=6))
def test_the_run_grid_is_the_span_of_the_samples_without_far_outliers(series):
    """run_grid against its plain definition over all samples at once."""
    from labctl.analysis.arrays import MAX_SPAN_S, run_grid

    secs = [np.unique(np.array(v, dtype=np.int64)) for v in series]
    binned = {("h", -1, "s", f"m{k}"): Binned("B", s, np.zeros(s.size)) for k, s in enumerate(secs)}
    for k, s in enumerate(secs[::2]):  # series binned together share one seconds array
        binned[("h", -1, "s", f"same{k}")] = Binned("B", s, np.ones(s.size))
    grid, outliers = run_grid(binned)
    allsecs = np.concatenate([b.secs for b in binned.values()] + [np.zeros(0, dtype=np.int64)])
    if allsecs.size == 0:
        assert (grid.t0, grid.n, outliers) == (0, 1, 0)
        return
    lo, hi = np.quantile(allsecs, [0.01, 0.99])
    margin = max(3600.0, hi - lo)
    inside = allsecs[(allsecs >= lo - margin) & (allsecs <= hi + margin)]
    t0 = int(inside.min())
    t1 = int(min(inside.max(), t0 + MAX_SPAN_S))
    assert (grid.t0, grid.n, outliers) == (t0, t1 - t0 + 1, int(np.sum((allsecs < t0) | (allsecs > t1))))


def _rows(path) -> dict:
    table = pq.read_table(path).to_pydict()
    return {(h, -1 if g is None else g, src, m, int(ts.timestamp())): (v, u)
            for h, g, src, m, v, u, ts in zip(*table.values(), strict=True)}


def test_the_timeline_holds_every_binned_value_of_every_series_not_zero_throughout(tmp_path):
    from benchmarks.synthbundle import SynthSpec, write_run
    from labctl.report.analyse import analyse

    write_run(tmp_path / "run", SynthSpec(hosts=("gpu1", "gpu2")))
    result = analyse(tmp_path / "run")
    zero = {k for k, b in result.binned.items() if not np.any(b.values)}
    assert ("gpu1", -1, "mountstats", "nfs.retrans") in zero and ("gpu2", 0, "dmon", "gpu.enc") in zero
    want = {(*k, int(t)): (v, b.unit) for k, b in result.binned.items() if k not in zero
            for t, v in zip(b.secs.tolist(), b.values.tolist(), strict=True)}
    assert {k[2] for k in want} >= {"dmon", "mountstats", "nfsiostat", "bpftrace"}
    assert _rows(tmp_path / "run" / "timeline.parquet") == want
    assert result.summary["timeline_rows"] == len(want)
    assert result.summary["timeline_zero_series"] == len(zero)
    assert not list((tmp_path / "run").glob("*.tmp"))
    # the documented order: hosts by name, each host's sources as the report reads them, one run per series
    cols = ("host", "gpu", "source", "metric")
    table = pq.read_table(tmp_path / "run" / "timeline.parquet", columns=list(cols))
    keys = list(zip(*(table[c].to_pylist() for c in cols), strict=True))
    runs = [k for i, k in enumerate(keys) if i == 0 or k != keys[i - 1]]
    assert len(runs) == len(set(runs)) == len({k[:4] for k in want})
    reading = ("bpftrace", "nfsiostat", "mountstats", "trainer", "dmon")
    assert list(dict.fromkeys((h, src) for h, _, src, _ in runs)) == [
        (h, src) for h in ("gpu1", "gpu2") for src in reading if any(k[0] == h and k[2] == src for k in want)]


def test_a_failed_analysis_leaves_no_timeline_behind(tmp_path, monkeypatch):
    from benchmarks.synthbundle import SynthSpec, write_run
    from labctl.analysis import metrics
    from labctl.report import analyse as analyse_module

    write_run(tmp_path / "run", SynthSpec(sources=("dmon", "mountstats", "nfsiostat")))

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(metrics, "summarize", broken)
    with pytest.raises(RuntimeError):
        analyse_module.analyse(tmp_path / "run")
    assert not list((tmp_path / "run").glob("timeline.parquet*"))
