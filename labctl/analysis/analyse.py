"""One call from a bundle to its outputs: timeline.parquet and summary.json."""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.analysis.arrays import RunArrays, run_arrays
from labctl.analysis.bundle import Progress, RunData, load_run, no_progress
from labctl.analysis.metrics import summarize
from labctl.analysis.series import Series, SeriesKey
from labctl.analysis.timeline import Binned, TimelineWriter, bin_all, warm_up


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
    writer = TimelineWriter(run_dir / "timeline.parquet") if write else None
    early: dict[SeriesKey, Binned] = {}
    writes: list[Future] = []
    with ThreadPoolExecutor(1) as pool:  # the timeline is encoded there (Parquet runs without the GIL)

        def logs_parsed(series: dict[SeriesKey, Series]) -> None:  # while the trace's workers still run
            part = bin_all(series)
            early.update(part)
            if writer is not None:
                writes.append(pool.submit(writer.write, part))

        try:
            # pyarrow's import and set-up, done while the parsers' threads run (they mostly hold no GIL)
            run = load_run(run_dir, progress, meanwhile=(lambda: pool.submit(warm_up)) if write else None,
                           logs_parsed=logs_parsed)
            progress("1 s timeline and summary")
            rest = bin_all({k: s for k, s in run.store.series.items() if k not in early})
            binned = {k: early[k] if k in early else rest[k] for k in run.store.series}
            run.store.series.clear()  # the raw samples are no longer needed
            if writer is not None:
                writes.append(pool.submit(writer.write, rest))
            arrays = run_arrays(run, binned)
            summary = summarize(run, binned, arrays)
            if writer is not None:
                progress("writing timeline.parquet")
                for job in writes:
                    job.result()
                summary["timeline_rows"] = writer.close()
        except BaseException:
            if writer is not None:
                for job in writes:
                    job.cancel()
                pool.shutdown(wait=True)
                writer.abort()
            raise
    if write:
        write_json(run_dir / "summary.json", summary)
    return Analysis(run, binned, arrays, summary)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (tmp + rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
