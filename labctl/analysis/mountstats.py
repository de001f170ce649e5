"""Per-interval `nfs.*` series from a host's mountstats samples: the compact `mountstats.csv` when the
bundle has it (read with pyarrow), else the verbatim `mountstats.log` through `labctl.formats.mountstats`.

A decreasing `age:` or any negative byte delta starts a new baseline (no record); the timestamp of an interval
is its end.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from labctl.analysis.clock import HostClock
from labctl.analysis.lines import ParseStats, iter_text
from labctl.analysis.series import SeriesStore
from labctl.formats import mountstats as fmt
from labctl.formats.mountstats import Entry

SOURCE = "mountstats"
MAX_DELTA = 2**63
MAX_BYTES_RATE = 1e12  # 1 TB/s per mount: anything above is a counter glitch, not traffic
LATENCIES = ((6, "rtt_ms"), (7, "exe_ms"), (5, "queue_ms"))
Metrics = list[tuple[str, str, float]]


def interval_metrics(e0: Entry, e1: Entry, dt: float, stats: ParseStats) -> Metrics | None:
    """(metric, unit, value) for the interval between two snapshots, or None when it must be dropped."""
    if e1.age is not None and e0.age is not None and e1.age < e0.age:
        stats.skip("counter_reset")
        return None
    db = [b - a for a, b in zip(e0.bytes, e1.bytes, strict=True)]
    if any(d < 0 for d in db):
        stats.skip("counter_reset")
        return None
    if any(d > MAX_DELTA for d in db) or max(db[4], db[5]) / dt > MAX_BYTES_RATE:
        stats.skip("absurd_delta")
        return None
    out: Metrics = [
        ("nfs.read.bytes", "B", float(db[4])), ("nfs.write.bytes", "B", float(db[5])),
        ("nfs.read.bytes_rate", "B/s", db[4] / dt), ("nfs.write.bytes_rate", "B/s", db[5] / dt),
        ("nfs.app_read.bytes_rate", "B/s", (db[0] + db[2]) / dt),
        ("nfs.app_write.bytes_rate", "B/s", (db[1] + db[3]) / dt),
        ("nfs.mmap_read.bytes_rate", "B/s", max(0, db[4] - db[0] - db[2]) / dt),
    ]
    retrans = timeouts = errors = 0
    for name, v1 in e1.ops.items():
        v0 = e0.ops.get(name)
        if v0 is None:
            continue
        d = [b - a for a, b in zip(v0, v1, strict=False)]
        if d[0] < 0 or d[0] > MAX_DELTA:
            stats.skip("counter_reset")
            continue
        low = name.lower()
        out.append((f"nfs.{low}.ops_rate", "ops/s", d[0] / dt))
        if 0 <= d[1] - d[0] < MAX_DELTA:
            retrans += d[1] - d[0]
        timeouts += max(d[2], 0)
        if len(d) > 8 and 0 <= d[8] < MAX_DELTA:
            errors += d[8]
        if d[0] > 0 and name in ("READ", "WRITE", "COMMIT"):
            for idx, label in LATENCIES:
                if 0 <= d[idx] < MAX_DELTA:
                    out.append((f"nfs.{low}.{label}", "ms", d[idx] / d[0]))
                else:
                    stats.skip("absurd_delta")
    out += [("nfs.retrans", "count", float(retrans)), ("nfs.timeouts", "count", float(timeouts))]
    if any(len(v) > 8 for v in e1.ops.values()):
        out.append(("nfs.errors", "count", float(errors)))
    (s0, b0), (s1, b1) = e0.xprt_sums(), e1.xprt_sums()
    out.append(("nfs.xprt.count", "count", float(len(e1.xprts))))
    if len(e0.xprts) == len(e1.xprts) and s1 >= s0:
        out.append(("nfs.xprt.sends_rate", "ops/s", (s1 - s0) / dt))
        if s1 > s0 and b1 >= b0:
            out.append(("nfs.xprt.backlog_avg", "count", (b1 - b0) / (s1 - s0)))
    ev0, ev1 = e0.events, e1.events
    if len(ev0) == len(ev1) and len(ev1) > fmt.EV_FSYNC:
        out.append(("nfs.fsync_rate", "ops/s", max(0, ev1[fmt.EV_FSYNC] - ev0[fmt.EV_FSYNC]) / dt))
        if len(ev1) > fmt.EV_PNFS_WRITE:
            out.append(("nfs.pnfs.read_dispatch_rate", "ops/s",
                        max(0, ev1[fmt.EV_PNFS_READ] - ev0[fmt.EV_PNFS_READ]) / dt))
            out.append(("nfs.pnfs.write_dispatch_rate", "ops/s",
                        max(0, ev1[fmt.EV_PNFS_WRITE] - ev0[fmt.EV_PNFS_WRITE]) / dt))
    return out


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


def complete_snapshots(path: Path, stats: ParseStats,
                       mount: str | None) -> Iterator[tuple[float, float, Entry]]:
    """(epoch, monotonic, entry) of each complete NFS snapshot of a `mountstats.log`."""
    for epoch, mono, body in fmt.read_snapshots(iter_text(path, stats), stats):
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
    prev: tuple[float, Entry] | None = None
    for epoch, mono, entry in complete_snapshots(path, stats, mount):
        info = info or MountInfo.of(entry)
        if prev is not None and mono - prev[0] <= 0:
            stats.skip("bad_interval")
        elif prev is not None and (metrics := interval_metrics(prev[1], entry, mono - prev[0], stats)):
            ts = clock.host(epoch)
            for metric, unit, value in [*metrics, ("nfs.interval_s", "s", mono - prev[0])]:
                store.add(host, -1, SOURCE, metric, unit, ts, value)
            stats.records += len(metrics)
        prev = mono, entry
    return stats, info


def first_mount_info(path: Path, mount: str | None = None) -> MountInfo | None:
    """The mount as the log's first complete snapshot shows it, without reading the rest."""
    for _, _, entry in complete_snapshots(path, ParseStats(SOURCE), mount):
        return MountInfo.of(entry)
    return None
