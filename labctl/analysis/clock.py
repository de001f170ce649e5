"""Per-host clock corrections: every timestamp is moved onto the controller's UTC clock."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.analysis.rawfile import finite_number, read_json

if TYPE_CHECKING:
    import numpy as np

MAX_OFFSET_S = 4e9  # a host clock more than a century off the controller's is no clock offset
MAX_UTC_OFFSET_S = 86_400.0  # time zones lie within a day of UTC


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


def iso_epoch(text: object) -> float | None:
    """Seconds since the epoch of an ISO 8601 time (`Z` for UTC allowed); None when `text` is not one."""
    from datetime import datetime

    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def naive_epoch(year: int, month: int, day: int, hh: int, mm: int, ss: float) -> float:
    """Seconds since the epoch of a wall time taken as UTC (no zone conversion)."""
    import calendar  # here: its imports (datetime, locale) would delay every parse's start

    return calendar.timegm((year, month, day, hh, mm, 0, 0, 0, 0)) + ss


def load_clock(path: Path, warnings: list[str]) -> HostClock:
    """Read `clock.json` (`offset_s`, optional `utc_offset_s`); a missing or unparsable file means no
    correction (with a warning).

    Raises:
        StateError: the file is not a regular file, or an offset is NaN, infinite, out of range or not a
            number (a wrong correction would misplace every sample of the host).
    """
    if not path.exists():
        warnings.append(f"{path}: missing; host clock taken as the controller clock")
        return HostClock()
    data = read_json(path, warnings)
    if data is None:
        warnings[-1] += "; no clock correction"
        return HostClock()
    if not isinstance(data, dict):
        warnings.append(f"{path}: not a JSON object; no clock correction")
        return HostClock()
    offset = data.get("offset_s")
    offset = 0.0 if offset is None else finite_number(offset, path=path, key="offset_s", limit=MAX_OFFSET_S)
    utc = data.get("utc_offset_s")
    if utc is None:
        return HostClock(offset)
    return HostClock(offset, finite_number(utc, path=path, key="utc_offset_s", limit=MAX_UTC_OFFSET_S), True)
