"""The host agent's compact records (`*.csv` beside the verbatim logs), read with pyarrow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labctl.analysis.rawfile import open_raw


def read_table(path: Path, names: tuple[str, ...] | None,
               ints: tuple[str, ...] = ()) -> dict[str, np.ndarray] | None:
    """The CSV's columns as float64 arrays (NaN where empty), the `ints` columns as int64 (float64 with NaN
    where one is empty); None when it is not a compact file with exactly these columns (`names`; None: those
    of its header line, read as they come)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with open_raw(path) as fh:  # a regular file, else refused by name
        if names is None:
            names = tuple(fh.readline().decode("utf-8", "replace").rstrip("\r\n").split(","))
            fh.seek(0)
        types = {n: pa.int64() if n in ints else pa.float64() for n in names}
        options = pacsv.ConvertOptions(column_types=types)
        try:
            table = pacsv.read_csv(fh, convert_options=options)
        except (pa.ArrowInvalid, OSError):
            return None
    if tuple(table.column_names) != names:
        return None
    return {n: table[n].combine_chunks().to_numpy(zero_copy_only=False) for n in names}
