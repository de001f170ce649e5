"""Small, consistent number and time formatting for reports."""

from __future__ import annotations

import time
from typing import Any


def num(x: Any, nd: int = 1, unit: str = "") -> str:
    """`12.3 unit`, or an em dash when unknown."""
    if x is None or isinstance(x, str):
        return "—" if x is None else x
    return f"{x:,.{nd}f}{(' ' + unit) if unit else ''}"


def size(b: Any) -> str:
    """Bytes in decimal units (B, kB, MB, GB, TB)."""
    if b is None:
        return "—"
    b = float(b)
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(b) >= scale:
            return f"{b / scale:,.2f} {unit}"
    return f"{b:,.0f} B"


def utc(ts: Any) -> str:
    """Epoch seconds as `YYYY-MM-DD HH:MM:SS UTC`."""
    if ts is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(ts))) + " UTC"


def clock(ts: Any) -> str:
    """Epoch seconds as `HH:MM:SS` (UTC)."""
    return "—" if ts is None else time.strftime("%H:%M:%S", time.gmtime(float(ts)))
