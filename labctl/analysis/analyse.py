"""One call from a bundle to its outputs: timeline.parquet and summary.json."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl.analysis.bundle import Progress, RunData, load_run, no_progress
from labctl.analysis.series import Series, SeriesKey

if TYPE_CHECKING:
    from labctl.analysis.arrays import RunArrays
    from labctl.analysis.timeline import Binned, TimelineWriter


@dataclass
class Analysis:
    """A parsed run, its 1 s series and its summary."""

    run: RunData
    binned: dict[SeriesKey, Binned]
    arrays: RunArrays
    summary: dict[str, Any]


def _load_the_rest(write: bool) -> None:
    """Import what follows the parse (numpy, the metrics, pyarrow and its set-up) while the parsers' threads
    run: they mostly hold no GIL, and the scanners need none of it."""
    import labctl.analysis.metrics  # noqa: F401  (numpy, arrays, checkpoints)
    from labctl.analysis import timeline

    if write:
        timeline.warm_up()


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Python's cycle collector paused: the analysis makes few Python objects and no cycles worth a pass, but
    numpy's and pyarrow's imports (during the parse) set off full passes that hold the GIL (~20 ms of CPU)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def analyse(run_dir: Path, *, write: bool = True, progress: Progress = no_progress) -> Analysis:
    """Parse `run_dir`, build the timeline and summary, and (by default) write both into the bundle;
    `progress` is told each step in words. A host's mountstats and nfsiostat rows are binned and written
    while its trace is still being parsed; the rest after.

    Raises:
        StateError: `run_dir` is not a run bundle.
    """
    with _without_cycle_collection():
        return _analyse(run_dir, write, progress)


def _analyse(run_dir: Path, write: bool, progress: Progress) -> Analysis:
    writers: list[TimelineWriter] = []  # the timeline's writer, once there is something to write
    early: dict[SeriesKey, Binned] = {}
    writes: list[Future] = []
    with ThreadPoolExecutor(1) as pool:  # the timeline is encoded there (Parquet runs without the GIL)

        def write_rows(binned: dict[SeriesKey, Binned]) -> None:
            from labctl.analysis.timeline import TimelineWriter

            if write and not writers:
                writers.append(TimelineWriter(run_dir / "timeline.parquet"))
            if writers:
                writes.append(pool.submit(writers[0].write, binned))

        def logs_parsed(series: dict[SeriesKey, Series]) -> None:  # while the trace's workers still run
            from labctl.analysis.timeline import bin_all

            part = bin_all(series)
            early.update(part)
            write_rows(part)

        try:
            run = load_run(run_dir, progress, meanwhile=lambda: pool.submit(_load_the_rest, write),
                           logs_parsed=logs_parsed)
            from labctl.analysis.arrays import run_arrays
            from labctl.analysis.metrics import summarize
            from labctl.analysis.timeline import bin_all

            progress("1 s timeline and summary")
            rest = bin_all({k: s for k, s in run.store.series.items() if k not in early})
            binned = {k: early[k] if k in early else rest[k] for k in run.store.series}
            run.store.series.clear()  # the raw samples are no longer needed
            write_rows(rest)
            arrays = run_arrays(run, binned)
            summary = summarize(run, binned, arrays)
            from labctl.analysis.ontap_findings import storage_side

            summary["ontap"], ontap_rows = storage_side(run_dir, summary)  # the storage side (raw/_ontap/)
            if ontap_rows:
                write_rows(ontap_rows)
            if writers:
                progress("writing timeline.parquet")
                for job in writes:
                    job.result()
                summary["timeline_rows"] = writers[0].close()
        except BaseException:
            for job in writes:
                job.cancel()
            pool.shutdown(wait=True)
            if writers:
                writers[0].abort()
            raise
    if write:
        write_json(run_dir / "summary.json", summary)
    return Analysis(run, binned, arrays, summary)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (tmp + rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
