"""The host agent's compact records (`mountstats.f64`, `nfsiostat.f64`, `dmon.f64`, `bpftrace.f64`): a table
of numbers beside each verbatim log, one row per sample, so the report reads counters without parsing text.

A header line `#labctl-f64 1 <column>,<column>,…` (ASCII, ending in a newline), then the rows: one
little-endian IEEE 754 double per column, NaN where the sample has no value. Rows are appended as samples
come; a last row cut short (the writer was stopped mid-row) is not a row. Readable with the standard
library (`read`) or `numpy.fromfile(file, "<f8")` after the header line.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from labctl.fileops import write_text_atomic

MAGIC = b"#labctl-f64 1 "
Cell = float | int | None


def header(columns: Sequence[str]) -> bytes:
    """The header line of a record with these columns."""
    return MAGIC + ",".join(columns).encode("ascii") + b"\n"


def columns(line: bytes) -> tuple[str, ...] | None:
    """The columns a header line names; None when `line` is not a header."""
    if not (line.startswith(MAGIC) and line.endswith(b"\n")):
        return None
    names = tuple(line[len(MAGIC):-1].decode("ascii", "replace").split(","))
    return names if all(names) else None


def pack(row: Iterable[Cell]) -> bytes:
    """One row's bytes (None: NaN)."""
    values = array("d", (math.nan if v is None else v for v in row))
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


class Appender:
    """Rows appended to a record file as they come, each flushed (a new file gets the header first)."""

    def __init__(self, path: Path, names: Sequence[str]) -> None:
        self.width = len(names)
        self.fh: BinaryIO = open(path, "ab")  # noqa: SIM115 - closed by close()
        if self.fh.tell() == 0:
            self.fh.write(header(names))

    def row(self, values: Sequence[Cell]) -> None:
        """Append one row (as many values as columns)."""
        if len(values) != self.width:
            raise ValueError(f"a row of {len(values)} values for {self.width} columns")
        self.fh.write(pack(values))
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def write(path: Path, names: Sequence[str], rows: Iterable[Sequence[Cell]]) -> None:
    """Write a whole record through a temporary file and a rename."""
    write_text_atomic(path, header(names) + b"".join(pack(r) for r in rows))


def read(path: Path) -> tuple[tuple[str, ...], list[tuple[float, ...]]] | None:
    """A record's columns and rows (stdlib); None when it is not a record."""
    with open(path, "rb") as fh:
        names = columns(fh.readline())
        if names is None:
            return None
        values = array("d")
        data = fh.read()
    values.frombytes(data[: len(data) // (8 * len(names)) * 8 * len(names)])
    if sys.byteorder == "big":
        values.byteswap()
    n = len(names)
    return names, [tuple(values[i:i + n]) for i in range(0, len(values), n)]
