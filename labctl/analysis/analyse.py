"""One call from a bundle to its outputs: timeline.parquet and summary.json."""

from __future__ import annotations

import sys
import threading
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
    `progress` is told each step in words. timeline.parquet is written on a second thread while the summary
    is computed (pyarrow encodes without the interpreter lock); it replaces the bundle's earlier one only once
    the summary succeeded too.

    Raises:
        StateError: `run_dir` is not a run bundle.
    """
    from labctl.analysis.arrays import run_arrays
    from labctl.analysis.metrics import summarize
    from labctl.analysis.ontap import STATS, load_counters, series
    from labctl.analysis.ontap_findings import section
    from labctl.analysis.timeline import bin_all, informative, write_timeline

    run = load_run(run_dir, progress)
    progress("1 s timeline and summary")
    binned = bin_all(run.store.series)
    run.store.series.clear()  # the raw samples are no longer needed
    counters = load_counters(run_dir) if (run_dir / STATS).is_file() else None  # raw/_ontap/: storage side
    rows = {**binned, **(series(counters) if counters else {})}
    kept = informative(rows)
    pending = run_dir / "timeline.parquet.tmp"
    written: list[int | BaseException] = []

    def write_rows() -> None:
        try:
            written.append(write_timeline(kept, pending))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            written.append(exc)

    writer = threading.Thread(target=write_rows, name="timeline.parquet")
    if write:
        progress("writing timeline.parquet")
        writer.start()
    try:
        arrays = run_arrays(run, binned)
        summary = summarize(run, binned, arrays)
        summary["ontap"] = section(run_dir, summary, counters)
    finally:
        if write:
            writer.join()
            if not isinstance(written[0], int) or sys.exc_info()[0] is not None:
                pending.unlink(missing_ok=True)
    if write:
        if isinstance(written[0], BaseException):
            raise written[0]
        pending.replace(run_dir / "timeline.parquet")
        summary["timeline_zero_series"] = len(rows) - len(kept)
        summary["timeline_rows"] = written[0]
        write_json_atomic(run_dir / "summary.json", summary, indent=2)
    return Analysis(run, binned, arrays, summary)
