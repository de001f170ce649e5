"""Dense per-second arrays over a run's time range (NaN = no data)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from labctl.analysis.timeline import Binned

MAX_SPREAD_S = 60


@dataclass(frozen=True)
class Grid:
    """Seconds t0 … t0+n-1 (bin b covers the interval ending in [b, b+1))."""

    t0: int
    n: int

    def dense(self, b: Binned) -> np.ndarray:
        """Values of a binned series at each grid second, NaN where it has none."""
        out = np.full(self.n, np.nan)
        idx = b.secs - self.t0
        ok = (idx >= 0) & (idx < self.n)
        out[idx[ok]] = b.values[ok]
        return out

    def spread(self, b: Binned) -> np.ndarray:
        """A rate series held over the seconds its interval covers (gap since the previous sample, ≤ 60 s)."""
        out = np.full(self.n, np.nan)
        if b.secs.size == 0:
            return out
        span = np.clip(np.diff(np.r_[b.secs[0] - 1, b.secs]), 1, MAX_SPREAD_S)
        ends = b.secs - self.t0
        idx = np.repeat(ends, span) - (np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
        vals = np.repeat(b.values, span)
        ok = (idx >= 0) & (idx < self.n)
        out[idx[ok]] = vals[ok]
        return out

    def index(self, t: float) -> int:
        """The grid second holding epoch `t`, clamped to the grid."""
        return int(min(max(math.floor(t) - self.t0, 0), self.n - 1))

    def secs(self) -> np.ndarray:
        return np.arange(self.t0, self.t0 + self.n, dtype=np.int64)


def nansum_rows(rows: list[np.ndarray], n: int) -> np.ndarray:
    """Element-wise sum of arrays treating NaN as absent (NaN only where all are NaN)."""
    if not rows:
        return np.full(n, np.nan)
    stack = np.vstack(rows)
    out = np.nansum(stack, axis=0)
    out[np.all(np.isnan(stack), axis=0)] = np.nan
    return out
