"""One call from a bundle to its outputs: timeline.parquet and summary.json."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.analysis.arrays import RunArrays, run_arrays
from labctl.analysis.bundle import Progress, RunData, load_run, no_progress
from labctl.analysis.metrics import summarize
from labctl.analysis.series import SeriesKey
from labctl.analysis.timeline import Binned, bin_store, warm_up, write_timeline


@dataclass
class Analysis:
    """A parsed run, its 1 s series and its summary."""

    run: RunData
    binned: dict[SeriesKey, Binned]
    arrays: RunArrays
    summary: dict[str, Any]


def analyse(run_dir: Path, *, write: bool = True, progress: Progress = no_progress) -> Analysis:
    """Parse `run_dir`, build the timeline and summary, and (by default) write both into the bundle;
    `progress` is told each step in words.

    Raises:
        StateError: `run_dir` is not a run bundle.
    """
    with ThreadPoolExecutor(1) as pool:
        # pyarrow's import and set-up, done while the parsers' threads run (they mostly hold no GIL)
        run = load_run(run_dir, progress, meanwhile=(lambda: pool.submit(warm_up)) if write else None)
        progress("1 s timeline and summary")
        binned = bin_store(run.store)
        run.store.series.clear()  # the raw samples are no longer needed
        # Parquet encodes without the GIL: the timeline is written while the summary is made
        rows = pool.submit(write_timeline, binned, run_dir / "timeline.parquet") if write else None
        arrays = run_arrays(run, binned)
        summary = summarize(run, binned, arrays)
        if rows is not None:
            progress("writing timeline.parquet")
            summary["timeline_rows"] = rows.result()
    if write:
        write_json(run_dir / "summary.json", summary)
    return Analysis(run, binned, arrays, summary)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (tmp + rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
