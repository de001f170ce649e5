"""One call from a bundle to its outputs: timeline.parquet and summary.json."""

from __future__ import annotations

import contextlib
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
    `progress` is told each step in words. timeline.parquet is written on a second thread while the bundle
    is still being read and the summary computed, each source's series as soon as they are final; it
    replaces the bundle's earlier one only once the summary succeeded too.

    Raises:
        StateError: `run_dir` is not a run bundle.
    """
    from labctl.analysis.arrays import run_arrays
    from labctl.analysis.metrics import summarize
    from labctl.analysis.timeline import TimelineWriter, bin_all, informative
    from labctl.storage.counters import STATS, load_counters, series
    from labctl.storage.findings import section

    pending = run_dir / "timeline.parquet.tmp"
    writer = TimelineWriter(pending) if write and (run_dir / "raw").is_dir() else None
    binned: dict[SeriesKey, Binned] = {}
    kept = 0

    def keep(batch: dict[SeriesKey, Binned]) -> dict[SeriesKey, Binned]:
        nonlocal kept
        rows = informative(batch)
        kept += len(rows)
        if writer is not None:
            writer.put(rows)
        return batch

    try:
        run = load_run(run_dir, progress, ready=lambda new: binned.update(keep(bin_all(new))))
        progress("1 s timeline and summary")
        run.store.series.clear()  # the raw samples are no longer needed
        # raw/_ontap/: the storage side
        counters = load_counters(run_dir) if (run_dir / STATS).is_file() else None
        ontap_rows = keep(series(counters) if counters else {})
        arrays = run_arrays(run, binned)
        summary = summarize(run, binned, arrays)
        summary["ontap"] = section(run_dir, summary, counters)
    except BaseException:
        if writer is not None:
            with contextlib.suppress(BaseException):
                writer.close()
            pending.unlink(missing_ok=True)
        raise
    if writer is not None:
        summary["timeline_rows"] = writer.close()
        pending.replace(run_dir / "timeline.parquet")
        summary["timeline_zero_series"] = len(binned) + len(ontap_rows) - kept
        write_json_atomic(run_dir / "summary.json", summary, indent=2)
    return Analysis(run, binned, arrays, summary)
