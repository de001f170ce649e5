"""Per-second arrays of a run: the grid, GPU utilisation of the GPUs it used, NFS read/write rates."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import numpy as np

from labctl.analysis.bundle import RunData
from labctl.analysis.grid import Grid, nansum_rows
from labctl.analysis.series import SeriesKey
from labctl.analysis.timeline import Binned

ACTIVE_PCT = 5.0
MAX_SPAN_S = 60 * 86_400
# NFS byte sources per host, best first: (source, bytes metric, rate metric)
NFS_SOURCES = (("mountstats", "nfs.{}.bytes", "nfs.{}.bytes_rate"),
               ("bpftrace", "io.{}.bytes", "io.{}.bytes_rate"),
               ("nfsiostat", "nfsiostat.{}.bytes", "nfsiostat.{}.bytes_rate"))


def run_grid(binned: dict[SeriesKey, Binned]) -> tuple[Grid, int]:
    """The seconds the run covers, and how many samples lie far outside them: a garbled timestamp that
    still parses (`#ts 17959…` cut short, a bad dmon date) must not stretch the grid over decades, so samples
    farther than max(1 h, the 1–99 % quantile span) from that span are left out; at most MAX_SPAN_S long."""
    shared: dict[int, list] = {}  # each seconds array once (series binned together share one), and its count
    for b in binned.values():
        if b.secs.size:
            shared.setdefault(id(b.secs), [b.secs, 0])[1] += 1
    if not shared:
        return Grid(0, 1), 0
    secs, weights = [s for s, _ in shared.values()], [w for _, w in shared.values()]
    lo, hi = _quantiles(secs, weights, (0.01, 0.99))
    margin = max(3600.0, hi - lo)
    # the first and last second inside [lo - margin, hi + margin], and the count outside [t0, t1]: per series
    first = [s[i] for s in secs if (i := int(np.searchsorted(s, lo - margin, "left"))) < s.size]
    last = [s[i - 1] for s in secs if (i := int(np.searchsorted(s, hi + margin, "right"))) > 0]
    t0 = int(min(first))
    t1 = int(min(max(last), t0 + MAX_SPAN_S))
    outside = sum(w * (int(np.searchsorted(s, t0, "left")) + s.size - int(np.searchsorted(s, t1, "right")))
                  for s, w in zip(secs, weights, strict=True))
    return Grid(t0, t1 - t0 + 1), outside


def _quantiles(secs: list[np.ndarray], weights: list[int], qs: tuple[float, ...]) -> list[float]:
    """np.quantile(qs) (its default, linear method) of the samples of every array in `secs` (each sorted),
    the array counted `weights` times, without joining them (a bisection over the seconds)."""
    n = sum(w * s.size for s, w in zip(secs, weights, strict=True))

    def count(t: int) -> int:  # samples ≤ second t
        return sum(w * int(np.searchsorted(s, t, "right")) for s, w in zip(secs, weights, strict=True))

    seconds = range(min(int(s[0]) for s in secs), max(int(s[-1]) for s in secs) + 1)
    out = []
    for q in qs:
        h = (n - 1) * q
        k = int(np.floor(h))
        # the k-th and (k+1)-th smallest samples (from 0): the first seconds with more samples ≤ them
        pair = np.array([seconds[bisect.bisect_right(seconds, j, key=count)] for j in (k, min(k + 1, n - 1))])
        out.append(float(np.quantile(pair, h - k)))  # numpy's own interpolation between the two neighbours
    return out


@dataclass
class RunArrays:
    """Per-second arrays on the run's grid: GPU utilisation (mean of GPUs and per GPU), NFS rates (B/s)."""

    grid: Grid
    outliers: int  # samples outside the grid (see run_grid)
    u: np.ndarray
    gpu_rows: dict[tuple[str, int], np.ndarray]
    read: np.ndarray
    write: np.ndarray
    nfs_source: dict[str, str]
    per_host: list[dict[str, Any]]  # each host's NFS source and read/write bytes
    all_gpu_rows: dict[tuple[str, int], np.ndarray]


def run_arrays(run: RunData, binned: dict[SeriesKey, Binned]) -> RunArrays:
    """GPU `gpu.sm` per second (mean over every GPU of every host) and run-level NFS read/write rates,
    each host's rates taken from its best NFS source (mountstats > bpftrace > nfsiostat)."""
    g, outliers = run_grid(binned)
    all_rows = {(k[0], k[1]): g.dense(b) for k, b in binned.items() if k[2] == "dmon" and k[3] == "gpu.sm"}
    active = {k: v for k, v in all_rows.items() if _active(v)}
    gpu_rows = active or all_rows
    if gpu_rows:
        stack = np.vstack(list(gpu_rows.values()))
        cnt = np.sum(~np.isnan(stack), axis=0)
        u = np.where(cnt > 0, np.nansum(stack, axis=0) / np.maximum(cnt, 1), np.nan)
    else:
        u = np.full(g.n, np.nan)
    nfs_src: dict[str, str] = {}
    rates: dict[str, list[np.ndarray]] = {"read": [], "write": []}
    per_host: list[dict[str, Any]] = []
    for host in run.hosts:
        for source, bytes_m, rate_m in NFS_SOURCES:
            if binned.get((host, -1, source, rate_m.format("write"))) is not None:
                nfs_src[host] = source
                entry: dict[str, Any] = {"host": host, "source": source}
                for d in ("read", "write"):
                    rb = binned.get((host, -1, source, rate_m.format(d)))
                    bb = binned.get((host, -1, source, bytes_m.format(d)))
                    rates[d].append(g.spread(rb) if rb is not None else np.full(g.n, np.nan))
                    entry[f"{d}_bytes"] = float(bb.values.sum()) if bb is not None else 0.0
                per_host.append(entry)
                break
    return RunArrays(g, outliers, u, gpu_rows, nansum_rows(rates["read"], g.n),
                     nansum_rows(rates["write"], g.n), nfs_src, per_host, all_rows)


def _active(row: np.ndarray) -> bool:
    """A GPU the run used: its `sm` p95 over the whole run is at least 5 %."""
    v = row[~np.isnan(row)]
    return bool(v.size) and float(np.percentile(v, 95)) >= ACTIVE_PCT
