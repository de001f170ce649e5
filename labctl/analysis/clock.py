"""Per-host clock corrections: every timestamp is moved onto the controller's UTC clock."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class HostClock:
    """`offset_s` = host clock − controller clock; `utc_offset_s` = host local time − UTC."""

    offset_s: float = 0.0
    utc_offset_s: float = 0.0
    utc_offset_known: bool = False

    def host(self, epoch: float) -> float:
        """A host epoch timestamp on the controller clock."""
        return epoch - self.offset_s

    def host_in_place(self, epochs: np.ndarray) -> np.ndarray:
        """`host` for a float64 array, computed in it (no new array); returns it."""
        epochs -= self.offset_s
        return epochs

    def local(self, naive_epoch: float) -> float:
        """A host *local* wall time (read as if it were UTC) on the controller clock."""
        return naive_epoch - self.utc_offset_s - self.offset_s


def naive_epoch(year: int, month: int, day: int, hh: int, mm: int, ss: float) -> float:
    """Seconds since the epoch of a wall time taken as UTC (no zone conversion)."""
    import calendar  # here: its imports (datetime, locale) would delay every parse's start

    return calendar.timegm((year, month, day, hh, mm, 0, 0, 0, 0)) + ss


def load_clock(path: Path, warnings: list[str]) -> HostClock:
    """Read `clock.json` (`offset_s`, optional `utc_offset_s`); a missing or bad file means no correction."""
    if not path.exists():
        warnings.append(f"{path}: missing; host clock taken as the controller clock")
        return HostClock()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        offset = float(data.get("offset_s", 0.0) or 0.0)
        utc = data.get("utc_offset_s")
        return HostClock(offset, float(utc) if utc is not None else 0.0, utc is not None)
    except (ValueError, TypeError, AttributeError) as exc:
        warnings.append(f"{path}: unreadable ({exc}); no clock correction")
        return HostClock()
