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


def detect_bursts(w: np.ndarray) -> list[Burst]:
    """Write bursts: cores above the high threshold, extended above the low one, merged over short gaps."""
    x = np.nan_to_num(w, nan=0.0)
    if x.size == 0 or x.max() <= 0:
        return []
    peak = float(x.max())
    high = max(HIGH_ABS, HIGH_REL * peak)
    active = x[x > 0]
    low = max(LOW_ABS, LOW_REL * peak, LOW_MED * float(np.median(active)) if active.size else 0.0)
    low = min(low, high)
    above_low = x >= low
    spans: list[list[int]] = []
    for i in np.flatnonzero(x >= high):
        if spans and i <= spans[-1][1]:
            continue
        a = b = int(i)
        while a > 0 and above_low[a - 1]:
            a -= 1
        while b + 1 < x.size and above_low[b + 1]:
            b += 1
        if spans and a - spans[-1][1] - 1 <= MERGE_GAP_S:
            spans[-1][1] = b
        else:
            spans.append([a, b])
    bursts = [Burst(a, b, float(x[a:b + 1].sum())) for a, b in spans]
    if not bursts:
        return []
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
    gap_first: int | None
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
        return Impact(0, None, 0, 0.0, util_during)
    idle = np.nan_to_num(u, nan=np.inf) < IDLE_REL * base
    idle[: train.start] = False
    idle[train.stop:] = False
    lo, hi = max(burst.first - 2, 0), min(burst.last + 2, u.size - 1)
    best: tuple[int, int] | None = None
    i = lo
    while i <= hi:
        if idle[i]:
            a = b = i
            while a > 0 and idle[a - 1]:
                a -= 1
            while b + 1 < u.size and idle[b + 1]:
                b += 1
            if best is None or b - a > best[1] - best[0]:
                best = (a, b)
            i = b + 1
        else:
            i += 1
    start = best[1] + 1 if best else burst.first
    thr = base - max(SUPPRESS_MARGIN, 2 * mad)
    end = min(start + SUPPRESS_MAX_S, limit, u.size, train.stop)
    j, loss = start, 0.0
    while j < end and not np.isnan(u[j]) and u[j] < thr:
        loss += max(base - float(u[j]), 0.0) / base
        j += 1
    blocking = best[1] - best[0] + 1 if best else 0
    return Impact(blocking, best[0] if best else None, j - start, loss, util_during)
