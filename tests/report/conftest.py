"""Shared helpers for the report tests: fixture paths and bundle-format wrappers around raw captures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labctl.analysis.clock import HostClock
from labctl.analysis.series import SeriesStore

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def store() -> SeriesStore:
    return SeriesStore()


@pytest.fixture
def utc() -> HostClock:
    return HostClock()


def with_ts(text: str, start: float, step: float = 1.0) -> str:
    """Insert the bundle's `#ts <epoch>` line before each nfsiostat block (`… mounted on …`)."""
    out, k = [], 0
    for line in text.split("\n"):
        if re.search(r"\S mounted on \S", line):
            out.append(f"#ts {start + k * step:.3f}")
            k += 1
        out.append(line)
    return "\n".join(out)


def values(store: SeriesStore, metric: str, gpu: int = -1, host: str = "h") -> list[float]:
    """All values of one metric (any source) for a host/GPU."""
    for (h, g, _src, m), s in store.series.items():
        if h == host and g == gpu and m == metric:
            return list(s.values)
    return []


def times(store: SeriesStore, metric: str, gpu: int = -1, host: str = "h") -> list[float]:
    for (h, g, _src, m), s in store.series.items():
        if h == host and g == gpu and m == metric:
            return list(s.ts)
    return []
