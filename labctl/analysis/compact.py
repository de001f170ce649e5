"""The host agent's compact records (`*.csv` beside the verbatim logs), read with pyarrow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labctl.analysis.rawfile import open_raw


def read_table(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The CSV's columns as float64 arrays (NaN where empty); None when it is not a compact file with exactly
    these columns."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    options = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.float64()))
    with open_raw(path) as fh:  # a regular file, else refused by name
        try:
            table = pacsv.read_csv(fh, convert_options=options)
        except (pa.ArrowInvalid, OSError):
            return None
    if tuple(table.column_names) != names:
        return None
    return {n: table[n].to_numpy() for n in names}
