"""Columnar accumulation of samples: one compact series per (host, gpu, source, metric)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

SeriesKey = tuple[str, int, str, str]  # host, gpu (-1 = host level), source, metric


@dataclass
class Series:
    """Timestamps (controller UTC epoch s) and values of one metric, in arrival order: `array("d")` for
    parsers that append, or the float64 buffers a bulk `extend` handed over (copied on the next append)."""

    unit: str
    ts: array | np.ndarray = field(default_factory=lambda: array("d"))
    values: array | np.ndarray = field(default_factory=lambda: array("d"))

    def appendable(self) -> Series:
        """This series with `array("d")` storage (a copy of handed-over buffers, once)."""
        if not isinstance(self.ts, array):
            ts, values = array("d"), array("d")
            ts.frombytes(memoryview(self.ts).cast("B"))
            values.frombytes(memoryview(self.values).cast("B"))
            self.ts, self.values = ts, values
        return self


class SeriesStore:
    """All samples of a run, grouped by series; appends are O(1) and compact."""

    def __init__(self) -> None:
        self.series: dict[SeriesKey, Series] = {}

    def add(self, host: str, gpu: int, source: str, metric: str, unit: str, ts: float, value: float) -> None:
        s = self.series.setdefault((host, gpu, source, metric), Series(unit)).appendable()
        s.ts.append(ts)
        s.values.append(value)

    def extend(self, host: str, gpu: int, source: str, metric: str, unit: str, ts: array | np.ndarray,
               values: array | np.ndarray) -> None:
        """Record many samples at once: `ts` and `values` are float64 buffers (`array("d")`, numpy) of equal
        length. A new series takes them over without a copy (several series may share one `ts`), so the
        caller must not change them afterwards."""
        tv, vv = memoryview(ts), memoryview(values)
        if tv.format != "d" or vv.format != "d" or len(tv) != len(vv) or tv.ndim != 1 or vv.ndim != 1:
            raise ValueError("extend takes two one-dimensional float64 buffers of equal length")
        key = (host, gpu, source, metric)
        if key not in self.series:
            self.series[key] = Series(unit, ts, values)
            return
        s = self.series[key].appendable()
        s.ts.frombytes(tv.cast("B"))
        s.values.frombytes(vv.cast("B"))

    def get(self, host: str, gpu: int, source: str, metric: str) -> Series | None:
        return self.series.get((host, gpu, source, metric))
