"""`nvidia-smi --query-gpu=… --format=csv[,nounits] -l N` and `dcgmi dmon` text (not in the bundle today;
parsed for hosts that only offer these)."""

from __future__ import annotations

import re
from pathlib import Path

from labctl.analysis.clock import HostClock, naive_epoch
from labctl.analysis.lines import ParseStats, iter_text
from labctl.analysis.series import SeriesStore

_HEADER_UNIT = re.compile(r"^(?P<name>.+?)\s*\[(?P<unit>[^\]]+)\]$")
_TS = re.compile(r"^(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d(?:\.\d+)?)$")
_UNITS = {"%": ("%", 1.0), "MiB": ("B", 2.0**20), "W": ("W", 1.0), "MHz": ("MHz", 1.0), "C": ("C", 1.0)}
_MISSING = {"[N/A]", "[Not Supported]", "N/A", ""}


def _metric(field: str) -> str:
    return "gpu.util" if field == "utilization.gpu" else f"gpu.{field}"


def parse_query_gpu(path: Path, host: str, store: SeriesStore, clock: HostClock) -> ParseStats:
    """CSV rows → `gpu.<field>` (`utilization.gpu` → `gpu.util`); `[N/A]` gives no record."""
    stats = ParseStats("query-gpu", str(path))
    names: list[tuple[str, str]] = []
    for line in iter_text(path, stats):
        cells = [c.strip() for c in line.split(",")]
        if not line.strip():
            continue
        if "timestamp" in cells or "index" in cells:
            names = []
            for c in cells:
                m = _HEADER_UNIT.match(c)
                names.append((m["name"], m["unit"]) if m else (c, ""))
            continue
        if not names or len(cells) != len(names):
            stats.skip("no_header" if not names else "column_count")
            continue
        row = dict(zip((n for n, _ in names), cells, strict=True))
        m = _TS.match(row.get("timestamp", ""))
        if m is None:
            stats.skip("bad_timestamp")
            continue
        y, mo, d, hh, mi = (int(x) for x in m.groups()[:5])
        ts = clock.local(naive_epoch(y, mo, d, hh, mi, float(m[6])))
        gpu = int(row["index"]) if row.get("index", "").isdigit() else -1
        for name, unit in names:
            if name in ("timestamp", "index", "uuid", "name", "pci.bus_id"):
                continue
            raw = row[name]
            if raw in _MISSING:
                continue
            try:
                value = float(raw.split()[0])
            except ValueError:
                stats.skip("bad_value")
                continue
            out_unit, factor = _UNITS.get(unit, (unit, 1.0))
            store.add(host, gpu, "query-gpu", _metric(name), out_unit, ts, value * factor)
            stats.records += 1
    return stats


def parse_dcgmi(path: Path, host: str, store: SeriesStore, *, start_ts: float,
                interval_s: float = 1.0) -> ParseStats:
    """`dcgmi dmon` rows (`GPU <n>` entities, any order) → `gpu.prof.<SHORTNAME>`; a sample ends when an
    entity repeats; profiling fields stay ratios; `N/A` gives no record. dcgmi prints no time: samples are
    placed at `start_ts + k * interval_s`."""
    stats = ParseStats("dcgmi", str(path))
    names: list[str] = []
    seen: set[str] = set()
    sample = 0
    for line in iter_text(path, stats):
        toks = line.split()
        if not toks:
            continue
        if toks[0] == "#Entity":
            names = toks[1:]
            continue
        if toks[0] == "ID":
            continue
        if len(toks) < 2 or toks[0] != "GPU" or not toks[1].isdigit() or len(toks) - 2 != len(names):
            stats.skip("bad_row")
            continue
        if toks[1] in seen:
            sample += 1
            seen.clear()
        seen.add(toks[1])
        ts = start_ts + sample * interval_s
        for name, raw in zip(names, toks[2:], strict=True):
            if raw == "N/A":
                continue
            try:
                value = float(raw)
            except ValueError:
                stats.skip("bad_value")
                continue
            store.add(host, int(toks[1]), "dcgmi", f"gpu.prof.{name}", "ratio", ts, value)
            stats.records += 1
    return stats
