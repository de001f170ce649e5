"""Checkpoint events from NFS write bursts, and what each cost the GPUs.

All arrays are per second on one `Grid`; `w` is the run's write rate (B/s), `u` the mean GPU utilisation (%).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MiB = 2**20
HIGH_ABS, HIGH_REL = 4 * MiB, 0.10       # burst core: w ≥ max(4 MiB/s, 10 % of the peak)
LOW_ABS, LOW_REL, LOW_MED = 512 * 1024, 0.02, 4.0  # extension: w ≥ max(512 KiB/s, 2 % of peak, 4 × median)
MERGE_GAP_S = 3
MIN_REL_BYTES = 0.02                     # bursts smaller than 2 % of the largest are dropped
IDLE_REL = 0.5                           # GPU idle: u < 50 % of the baseline
SUPPRESS_MARGIN = 3.0                    # suppressed: u < baseline − max(3 points, 2 × MAD)
SUPPRESS_MAX_S = 600


@dataclass
class Burst:
    """Grid indices [first, last] of a write burst and its bytes."""

    first: int
    last: int
    bytes: float


def _runs(mask: np.ndarray) -> np.ndarray:
    """The maximal runs of True in `mask`, in order, as rows [first, last]."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], mask, [False]))))
    return edges.reshape(-1, 2) - [0, 1]


def detect_bursts(w: np.ndarray) -> list[Burst]:
    """Write bursts: runs over the low threshold holding a core over the high one, merged over short gaps."""
    x = np.nan_to_num(w, nan=0.0)
    if x.size == 0 or x.max() <= 0:
        return []
    peak = float(x.max())
    high = max(HIGH_ABS, HIGH_REL * peak)
    low = min(max(LOW_ABS, LOW_REL * peak, LOW_MED * float(np.median(x[x > 0]))), high)
    runs, cores = _runs(x >= low), np.flatnonzero(x >= high)
    runs = runs[np.searchsorted(cores, runs[:, 1], "right") > np.searchsorted(cores, runs[:, 0])]
    if not runs.size:
        return []
    new = np.r_[True, runs[1:, 0] - runs[:-1, 1] - 1 > MERGE_GAP_S]  # not merged into the burst before
    firsts, lasts = runs[new, 0].tolist(), runs[np.r_[new[1:], True], 1].tolist()
    bursts = [Burst(a, b, float(x[a:b + 1].sum())) for a, b in zip(firsts, lasts, strict=True)]
    biggest = max(b.bytes for b in bursts)
    return [b for b in bursts if b.bytes >= MIN_REL_BYTES * biggest]


def baseline(u: np.ndarray, train: slice, bursts: list[Burst]) -> tuple[float, float]:
    """Steady-state GPU utilisation: median and MAD over training seconds outside bursts (±2 s)."""
    mask = np.zeros(u.size, dtype=bool)
    mask[train] = True
    for b in bursts:
        mask[max(b.first - 2, 0):b.last + 3] = False
    vals = u[mask & ~np.isnan(u)]
    if vals.size == 0:
        vals = u[~np.isnan(u)]
    if vals.size == 0:
        return float("nan"), 0.0
    med = float(np.median(vals))
    return med, float(np.median(np.abs(vals - med)))


@dataclass
class Impact:
    """GPU cost of one burst: the idle gap, and the time below baseline after resuming."""

    blocking_s: int
    suppression_s: int
    suppression_loss_s: float
    util_during: float | None


def impact(u: np.ndarray, burst: Burst, base: float, mad: float, limit: int, train: slice) -> Impact:
    """Blocking gap = the longest run of idle seconds (u < 50 % of baseline) meeting [first−2, last+2];
    suppression = seconds after it (or after the burst start when there is no gap) with u below
    baseline − max(3, 2·MAD), up to `limit` (the next burst) or 600 s; loss = Σ (baseline − u)/baseline.
    Both count only seconds inside the training window `train` (idle time after training is not a stall)."""
    during = u[burst.first:burst.last + 1]
    util_during = float(np.nanmean(during)) if np.any(~np.isnan(during)) else None
    if np.isnan(base) or base <= 0:
        return Impact(0, 0, 0.0, util_during)
    idle = np.nan_to_num(u, nan=np.inf) < IDLE_REL * base
    idle[: train.start] = False
    idle[train.stop:] = False
    runs = _runs(idle)
    runs = runs[(runs[:, 1] >= burst.first - 2) & (runs[:, 0] <= burst.last + 2)]
    best = runs[np.argmax(runs[:, 1] - runs[:, 0])].tolist() if runs.size else None  # the first longest
    start = best[1] + 1 if best else burst.first
    thr = base - max(SUPPRESS_MARGIN, 2 * mad)
    end = min(start + SUPPRESS_MAX_S, limit, u.size, train.stop)
    j, loss = start, 0.0
    while j < end and not np.isnan(u[j]) and u[j] < thr:
        loss += max(base - float(u[j]), 0.0) / base
        j += 1
    blocking = best[1] - best[0] + 1 if best else 0
    return Impact(blocking, j - start, loss, util_during)
