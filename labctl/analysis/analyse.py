"""One call from a bundle to its outputs: timeline.parquet and summary.json."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl.analysis.bundle import Progress, RunData, load_run, no_progress
from labctl.analysis.series import SeriesKey
from labctl.fileops import write_json_atomic

if TYPE_CHECKING:
    from labctl.analysis.arrays import RunArrays
    from labctl.analysis.timeline import Binned


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
    from labctl.analysis.arrays import run_arrays
    from labctl.analysis.metrics import summarize
    from labctl.analysis.timeline import bin_all, informative, write_timeline

    run = load_run(run_dir, progress)
    progress("1 s timeline and summary")
    binned = bin_all(run.store.series)
    run.store.series.clear()  # the raw samples are no longer needed
    arrays = run_arrays(run, binned)
    summary = summarize(run, binned, arrays)
    from labctl.analysis.ontap_findings import storage_side

    summary["ontap"], ontap_rows = storage_side(run_dir, summary)  # the storage side (raw/_ontap/)
    if write:
        progress("writing timeline.parquet")
        rows = {**binned, **ontap_rows}
        kept = informative(rows)
        summary["timeline_zero_series"] = len(rows) - len(kept)
        summary["timeline_rows"] = write_timeline(kept, run_dir / "timeline.parquet")
        write_json_atomic(run_dir / "summary.json", summary, indent=2)
    return Analysis(run, binned, arrays, summary)

