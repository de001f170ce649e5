"""The one way the report opens a bundle's files: regular files only, and numbers that are real numbers.

A hostile or damaged bundle can hold a directory, a FIFO, a socket or a device where a log belongs (opening
a FIFO for reading blocks until a writer comes), or `NaN`, `Infinity` and `1e308` where a clock offset
belongs. Every file the analysis reads is opened here and refused by name unless it is a regular file; every
number a sidecar JSON file contributes to the timestamps passes `finite_number`.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from labctl.errors import StateError
from labctl.formats import records

if TYPE_CHECKING:
    import numpy as np

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
_FIX = "replace it with the file from the host (`labctl collect RUN` fetches it again) or remove it"


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _refuse(path: Path, mode: int) -> StateError:
    return StateError(f"is {_kind(mode)}, not a regular file: refused without reading it",
                      where=str(path), fix=_FIX)


def open_raw(path: Path, buffering: int = -1) -> BinaryIO:
    """`path` opened for binary reading, if it is a regular file (a symlink is followed).

    The type is checked before opening (a FIFO is never opened) and again on the open descriptor (the
    path cannot be swapped in between: the open itself does not block, O_NONBLOCK).

    Raises:
        StateError: `path` is a directory, FIFO, socket or device.
        OSError: it cannot be read (missing, permissions).
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _refuse(path, mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _refuse(path, mode)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=buffering)
    except BaseException:
        os.close(fd)
        raise


def read_text(path: Path) -> str:
    """A regular file's text (UTF-8, undecodable bytes replaced)."""
    with open_raw(path) as fh:
        return fh.read().decode("utf-8", "replace")


def read_json(path: Path, warnings: list[str]) -> Any:
    """A JSON file's content, or None (with a warning) when absent or unreadable.

    Raises:
        StateError: `path` exists but is not a regular file.
    """
    if not path.exists():
        return None
    try:
        with open_raw(path) as fh:
            return json.loads(fh.read())
    except (ValueError, OSError) as exc:
        warnings.append(f"{path}: unreadable JSON ({exc})")
        return None


def read_record(path: Path, names: tuple[str, ...] | None = None
                ) -> tuple[tuple[str, ...], np.ndarray] | None:
    """A compact record (`labctl.formats.records`, the host agent's `*.f64`): its columns and a float64 array
    of one row per column (NaN: no value); None when it is not a record with exactly these columns (`names`;
    None: whichever it has).

    Raises:
        StateError: `path` exists but is not a regular file.
    """
    import numpy as np

    with open_raw(path) as fh:
        got = records.columns(fh.readline())
        if got is None or names not in (None, got):
            return None
        flat = np.fromfile(fh, dtype="<f8")
    rows = flat[: flat.size // len(got) * len(got)].reshape(-1, len(got))  # a row cut short is no row
    table = np.empty((len(got), len(rows)))
    for i in range(0, len(rows), 2048):  # transposed in blocks that stay in the cache: 3x one whole copy
        table[:, i:i + 2048] = rows[i:i + 2048].T
    return got, table


def finite_number(value: Any, *, path: Path, key: str, limit: float, unit: str = "s") -> float:
    """`value` as a float, if it is a JSON number (not a bool) with |value| ≤ limit.

    Raises:
        StateError: naming the file and key: NaN, Infinity, out of range, or not a number.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    number = float(value) if ok else math.nan
    if not (ok and math.isfinite(number) and abs(number) <= limit):
        raise StateError(f"{key} is {value!r}: not a number of {unit} within ±{limit:g}", where=str(path),
                         fix=f"correct {key} (or remove the file to analyse without it)")
    return number
