"""`nvidia-smi dmon` text: `#` header lines (column names, then units) bind the columns of the rows after.

Its compact form `dmon.f64` (`labctl.formats.records`), written by the host agent once dmon has stopped
(`write_compact`): `ts` (the row's Date/Time as seconds since the epoch, host local time read as UTC), `gpu`,
then one `name:unit` column per data column (NaN for `-`). Written only for a log whose every row follows a
header with Date, Time and gpu and carries a GPU index, a valid Date/Time and numbers or `-` (what dmon
writes); a row cut short (`^C`) or before any header is left out. Any other log stays the only record.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Iterator
from pathlib import Path

from . import records
from .mountstats import CountedSkips, Skips

KEYS = ("Date", "Time", "gpu")


def rows(lines: Iterable[str]) -> Iterator[tuple[list[str], list[str], list[str]] | None]:
    """(column names, units, tokens) per data row; None for a row before any header (`no_header`). A row's
    token count may differ from the names' (a `^C` mid-line): the caller checks."""
    names: list[str] = []
    units: list[str] = []
    for line in lines:
        if line.startswith("#"):
            toks = line[1:].split()
            if "gpu" in toks:
                names, units = toks, []
            elif "Idx" in toks:
                units = toks
            continue
        toks = line.split()
        if toks:
            yield (names, units, toks) if names else None


def format_header(names: list[str], units: list[str]) -> str:
    """The two header lines (`# gpu sm …`, `# Idx % …`)."""
    return "# " + " ".join(f"{n:>5s}" for n in names) + "\n# " + " ".join(f"{u:>5s}" for u in units) + "\n"


def format_row(values: list[str]) -> str:
    """One data row."""
    return "  " + " ".join(f"{v:>5s}" for v in values) + "\n"


def last_sample_sm(lines: list[str], complete: bool, gpus: int | None = None) -> float | None:
    """Mean `sm` % of the last sample (rows sharing the last Date/Time, else the last row) over GPUs with
    index < `gpus`; `complete` False drops the last line (still being written)."""
    if lines and not complete:
        lines = lines[:-1]
    found = [(r[0], r[2]) for r in rows(lines) if r is not None and "sm" in r[0] and len(r[2]) == len(r[0])]
    if not found:
        return None
    cols = found[-1][0]
    key = [cols.index(c) for c in ("Date", "Time") if c in cols]
    last = [t for n, t in found if n == cols and [t[i] for i in key] == [found[-1][1][i] for i in key]] \
        if key else [found[-1][1]]
    if gpus and "gpu" in cols:
        g = cols.index("gpu")
        last = [t for t in last if t[g].isdigit() and int(t[g]) < gpus]
    sm = cols.index("sm")
    values = [float(t[sm]) for t in last if t[sm].replace(".", "", 1).isdigit()]
    return round(sum(values) / len(values), 1) if values else None


def naive_time(date: str, time: str, cache: dict[str, int]) -> int | None:
    """`YYYYMMDD`, `HH:MM:SS` -> seconds since the epoch of that wall time read as UTC (None: malformed)."""
    base = cache.get(date)
    try:
        if base is None:
            if len(date) != 8 or not date.isdigit():
                return None
            day = (int(date[:4]), int(date[4:6]), int(date[6:]))
            base = cache[date] = calendar.timegm((*day, 0, 0, 0, 0, 0, 0))
        hh, mm, ss = time.split(":")
        return base + int(hh) * 3600 + int(mm) * 60 + int(ss)
    except ValueError:
        return None


Sample = tuple[int | None, int, list[tuple[str, float]]]  # Date/Time (None: no such columns), GPU, values


def samples(lines: Iterable[str], skips: Skips) -> Iterator[Sample]:
    """Each row's Date/Time (seconds since the epoch, local time read as UTC), GPU index and values, keyed
    `name:unit` (`-` is no value). A row before any header (`no_header`), with fewer or more tokens than its
    header (`column_count`, a `^C` mid-line), a bad GPU index or Date/Time is skipped, a bad value dropped
    (`bad_value`); each is counted in `skips`."""
    cache: dict[str, int] = {}
    for r in rows(lines):
        if r is None or len(r[2]) != len(r[0]):
            skips.skip("no_header" if r is None else "column_count")
            continue
        names, units, toks = r
        row = dict(zip(names, toks, strict=True))
        if not row["gpu"].isdigit():
            skips.skip("bad_gpu_index")
            continue
        ts = naive_time(row["Date"], row["Time"], cache) if "Date" in row and "Time" in row else None
        if ts is None and "Date" in row and "Time" in row:
            skips.skip("bad_timestamp")
            continue
        cells = []
        for i, name in enumerate(names):
            if name not in KEYS and toks[i] != "-":
                try:
                    cells.append((f"{name}:{units[i] if i < len(units) else ''}", float(toks[i])))
                except ValueError:
                    skips.skip("bad_value")
        yield ts, int(row["gpu"]), cells


def compact(lines: Iterable[str]) -> tuple[list[str], list[list[float | None]]] | None:
    """The `dmon.f64` columns and rows of a dmon log; None when `write_compact` does not take it."""
    skips = CountedSkips()
    got = list(samples(lines, skips))
    if not got or set(skips.counts) - {"no_header", "column_count"} or any(ts is None for ts, _, _ in got):
        return None
    columns = list(dict.fromkeys(key for _, _, cells in got for key, _ in cells))
    rows = []
    for ts, gpu, cells in got:
        have = dict(cells)
        rows.append([ts, gpu, *(have.get(c) for c in columns)])
    return ["ts", "gpu", *columns], rows


def write_compact(log: Path) -> bool:
    """Write `dmon.f64` beside `log` (through a temporary file and a rename); False when the log is not one
    it takes (see the module doc)."""
    text = log.read_bytes().decode("utf-8", "replace")
    got = compact(line.rstrip("\r") for line in text.split("\n")[:-1])  # a last line cut short: left out
    if got is None:
        return False
    records.write(log.with_name("dmon.f64"), *got)
    return True
