"""timeline.parquet holds exactly the binned series: each (host, GPU, source, metric, second), its value."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from labctl.analysis.timeline import Binned, write_timeline


def test_the_parquet_timeline_round_trips_every_binned_value(tmp_path):
    rng = np.random.default_rng(7)
    binned = {}
    for k in range(300):  # more metrics than an int8 dictionary index holds
        host, gpu = f"gpu{k % 3}", (k % 5) - 1
        secs = np.unique(rng.integers(1_795_959_000, 1_795_959_000 + 5000, size=int(rng.integers(0, 40))))
        binned[(host, gpu, ("dmon", "nfsiostat")[k % 2], f"m.{k}")] = Binned(("B", "%", "B/s")[k % 3], secs,
                                                                             rng.random(secs.size) * 1e9)
    path = tmp_path / "timeline.parquet"
    assert write_timeline(binned, path) == sum(b.secs.size for b in binned.values())
    table = pq.read_table(path).to_pydict()
    got: dict = {}
    for host, gpu, source, metric, value, unit, ts in zip(*table.values(), strict=True):
        key = (host, -1 if gpu is None else gpu, source, metric)
        assert unit == binned[key].unit
        got.setdefault(key, []).append((int(ts.timestamp()), value))
    assert got == {k: list(zip(b.secs.tolist(), b.values.tolist(), strict=True))
                   for k, b in binned.items() if b.secs.size}
