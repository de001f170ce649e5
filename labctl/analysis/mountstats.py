"""Per-interval `nfs.*` series from a host's mountstats samples: the agent's compact `mountstats.f64` when
the bundle has it, else the verbatim `mountstats.log` turned into the same rows through
`labctl.formats.mountstats`; one computation for both.

A decreasing `age:` or any negative byte delta starts a new baseline (no record); the timestamp of an interval
is its end.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labctl.analysis.clock import HostClock
from labctl.analysis.lines import ParseStats, iter_text
from labctl.analysis.rawfile import open_raw, read_record
from labctl.analysis.series import SeriesStore
from labctl.formats import mountstats as fmt
from labctl.formats.mountstats import Entry

SOURCE = "mountstats"
MAX_DELTA = 2**63
MAX_BYTES_RATE = 1e12  # 1 TB/s per mount: anything above is a counter glitch, not traffic
LATENCIES = (("rtt", "rtt_ms"), ("exe", "exe_ms"), ("queue", "queue_ms"))
_BYTES = slice(fmt.COLUMNS.index("bytes0"), fmt.COLUMNS.index("bytes7") + 1)


@dataclass
class MountInfo:
    """The mount as the kernel reports it (effective options), from the first complete snapshot."""

    device: str
    mount: str
    fstype: str
    opts: dict[str, str]
    pnfs: str
    xprt_count: int

    @classmethod
    def of(cls, e: Entry) -> MountInfo:
        return cls(e.device, e.mount, e.fstype, e.opts, e.nfsv4.get("pnfs", ""), len(e.xprts))

    def to_dict(self) -> dict[str, object]:
        return {"device": self.device, "mount": self.mount, "fstype": self.fstype, "opts": self.opts,
                "pnfs": self.pnfs, "xprt_count": self.xprt_count}


def complete_snapshots(lines: Iterator[str], stats: ParseStats,
                       mount: str | None) -> Iterator[tuple[float, float, Entry]]:
    """(epoch, monotonic, entry) of each complete NFS snapshot of a `mountstats.log`'s lines."""
    for epoch, mono, body in fmt.read_snapshots(lines, stats):
        entry = fmt.pick(fmt.parse_entries(body, stats), mount)
        if entry is None or not entry.complete():
            stats.skip("incomplete_snapshot")
            continue
        yield epoch, mono, entry


def parse_mountstats_log(path: Path, host: str, store: SeriesStore, clock: HostClock, *,
                         mount: str | None = None) -> tuple[ParseStats, MountInfo | None]:
    """Per-interval `nfs.*` series of a bundle `mountstats.log` (the verbatim samples)."""
    stats = ParseStats(SOURCE, str(path))
    info: MountInfo | None = None
    rows = []
    for epoch, mono, entry in complete_snapshots(iter_text(path, stats), stats, mount):
        info = info or MountInfo.of(entry)
        rows.append([np.nan if x is None else x for x in fmt.record(epoch, mono, entry)])
    grid = np.array(rows, dtype=np.float64).reshape(len(rows), len(fmt.COLUMNS))
    _interval_series(np.ascontiguousarray(grid.T), host, store, clock, stats)
    return stats, info


def read_mountstats_record(path: Path, host: str, store: SeriesStore, clock: HostClock) -> ParseStats | None:
    """`mountstats.f64` into the series `parse_mountstats_log` gives its log; None when unusable."""
    got = read_record(path, fmt.COLUMNS)
    if got is None:
        return None
    stats = ParseStats(SOURCE, str(path), lines=got[1].shape[1] + 1)
    _interval_series(got[1], host, store, clock, stats)
    return stats


def first_mount_info(path: Path, mount: str | None = None) -> MountInfo | None:
    """The mount as the log's first complete snapshot shows it, reading no further."""
    with open_raw(path, buffering=1 << 16) as fh:
        lines = (raw.decode("utf-8", "replace").rstrip("\r\n") for raw in fh)
        for _, _, entry in complete_snapshots(lines, ParseStats(SOURCE), mount):
            return MountInfo.of(entry)
    return None


def _interval_series(table: np.ndarray, host: str, store: SeriesStore, clock: HostClock,
                     stats: ParseStats) -> None:
    """The per-interval series of consecutive snapshots (`table`: a row per `fmt.COLUMNS`, NaN: none)."""
    diffs, now = np.diff(table, axis=1), table[:, 1:]
    d = dict(zip(fmt.COLUMNS, diffs, strict=True))
    dt, db = d["mono"], diffs[_BYTES]
    stats.skip("bad_interval", int(np.sum(dt <= 0)))
    reset = (dt > 0) & ((d["age"] < 0) | np.any(db < 0, axis=0))
    absurd = (dt > 0) & ~reset & (np.any(db > MAX_DELTA, axis=0) | (np.maximum(db[4], db[5]) / np.where(
        dt > 0, dt, 1) > MAX_BYTES_RATE))
    stats.skip("counter_reset", int(reset.sum()))
    stats.skip("absurd_delta", int(absurd.sum()))
    ok = (dt > 0) & ~reset & ~absurd
    if not ok.all():
        diffs, now = diffs[:, ok], now[:, ok]
        d = dict(zip(fmt.COLUMNS, diffs, strict=True))
        dt, db = d["mono"], diffs[_BYTES]
    cur = dict(zip(fmt.COLUMNS, now, strict=True))
    ts = clock.host_in_place(cur["ts"].copy())
    out: list[tuple[str, str, np.ndarray, np.ndarray]] = []

    def add(metric: str, unit: str, values: np.ndarray, where: np.ndarray | None = None) -> None:
        every = where is None or where.all()
        out.append((metric, unit, ts, values) if every else (metric, unit, ts[where], values[where]))

    add("nfs.read.bytes", "B", db[4])
    add("nfs.write.bytes", "B", db[5])
    add("nfs.read.bytes_rate", "B/s", db[4] / dt)
    add("nfs.write.bytes_rate", "B/s", db[5] / dt)
    add("nfs.app_read.bytes_rate", "B/s", (db[0] + db[2]) / dt)
    add("nfs.app_write.bytes_rate", "B/s", (db[1] + db[3]) / dt)
    add("nfs.mmap_read.bytes_rate", "B/s", np.maximum(0, db[4] - db[0] - db[2]) / dt)
    retrans, timeouts, errors = np.zeros(len(dt)), np.zeros(len(dt)), np.zeros(len(dt))
    any_errors = ~np.isnan(cur["other_errors"])

    def count(r: np.ndarray, t: np.ndarray, e: np.ndarray, good: np.ndarray) -> None:
        retrans[:] += np.where(good & (r >= 0) & (r < MAX_DELTA), r, 0)
        timeouts[:] += np.where(good, np.maximum(np.nan_to_num(t), 0), 0)
        errors[:] += np.where(good & (e >= 0) & (e < MAX_DELTA), e, 0)

    for op in fmt.OPS:
        low = op.lower()
        d0 = d[f"{low}_ops"]
        have = ~np.isnan(d0)
        bad = have & ((d0 < 0) | (d0 > MAX_DELTA))
        stats.skip("counter_reset", int(bad.sum()))
        good = have & ~bad
        add(f"nfs.{low}.ops_rate", "ops/s", d0 / dt, good)
        if op not in fmt.DATA_OPS:
            continue
        any_errors |= ~np.isnan(cur[f"{low}_errors"])
        count(d[f"{low}_trans"] - d0, d[f"{low}_timeouts"], d[f"{low}_errors"], good)
        busy = good & (d0 > 0)
        for field, label in LATENCIES:
            x = d[f"{low}_{field}"]
            fine = busy & (x >= 0) & (x < MAX_DELTA)
            stats.skip("absurd_delta", int((busy & ~fine).sum()))
            add(f"nfs.{low}.{label}", "ms", x / np.where(d0 > 0, d0, 1), fine)
    count(d["other_retrans"], d["other_timeouts"], d["other_errors"], np.ones(len(dt), dtype=bool))
    add("nfs.retrans", "count", retrans)
    add("nfs.timeouts", "count", timeouts)
    add("nfs.errors", "count", errors, any_errors)
    add("nfs.xprt.count", "count", cur["xprts"])
    same = (d["xprts"] == 0) & (d["xprt_sends"] >= 0)
    add("nfs.xprt.sends_rate", "ops/s", d["xprt_sends"] / dt, same)
    busy = same & (d["xprt_sends"] > 0) & (d["xprt_backlog"] >= 0)
    add("nfs.xprt.backlog_avg", "count", d["xprt_backlog"] / np.where(busy, d["xprt_sends"], 1), busy)
    events = (d["events"] == 0) & (cur["events"] > fmt.EV_FSYNC)
    add("nfs.fsync_rate", "ops/s", np.maximum(0, d["fsync"]) / dt, events)
    pnfs = events & (cur["events"] > fmt.EV_PNFS_WRITE)
    add("nfs.pnfs.read_dispatch_rate", "ops/s", np.maximum(0, d["pnfs_read"]) / dt, pnfs)
    add("nfs.pnfs.write_dispatch_rate", "ops/s", np.maximum(0, d["pnfs_write"]) / dt, pnfs)
    add("nfs.interval_s", "s", dt)
    for metric, unit, times, values in out:
        if times.size:
            store.extend(host, -1, SOURCE, metric, unit, np.ascontiguousarray(times, dtype=np.float64),
                         np.ascontiguousarray(values, dtype=np.float64))
            stats.records += times.size if metric != "nfs.interval_s" else 0
