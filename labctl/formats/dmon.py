"""`nvidia-smi dmon` text: `#` header lines (column names, then units) bind the columns of the rows after."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


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
