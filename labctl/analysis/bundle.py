"""Load a run bundle (`runs/<id>/`): every raw file of every host, parsed onto one clock."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from labctl.analysis.bpftrace import BpfResult, parse_bpftrace
from labctl.analysis.clock import HostClock, load_clock
from labctl.analysis.dmon import parse_dmon
from labctl.analysis.lines import ParseStats
from labctl.analysis.mountstats import MountInfo, first_mount_info, parse_mountstats_log
from labctl.analysis.mountstats import read_mountstats_record as read_mountstats
from labctl.analysis.nfsiostat import parse_nfsiostat, read_nfsiostat_record
from labctl.analysis.rawfile import finite_number, open_raw, read_json
from labctl.analysis.runner_events import parse_runner_events
from labctl.analysis.series import Series, SeriesKey, SeriesStore
from labctl.analysis.trainlog import TrainLog, parse_trainlog
from labctl.errors import StateError
from labctl.formats.bundle import BundleFile, Manifest, Monitors
from labctl.formats.procmounts import options

Progress = Callable[[str], None]  # told, in words, what is being parsed now
Ready = Callable[[dict[SeriesKey, Series]], None]  # given each batch of series as soon as they are final
F = TypeVar("F", bound=BundleFile)
MAX_EPOCH = 1e11  # seconds since 1970: beyond the year 5000, no time a sidecar file can mean


@dataclass
class RunData:
    """Everything parsed from one bundle."""

    run_dir: Path
    store: SeriesStore = field(default_factory=SeriesStore)
    parse: list[ParseStats] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    manifest: Manifest = field(default_factory=Manifest)  # an empty one when manifest.json is unusable
    hosts: list[str] = field(default_factory=list)
    mounts: dict[str, MountInfo] = field(default_factory=dict)
    bpf: dict[str, BpfResult] = field(default_factory=dict)
    train: dict[str, TrainLog] = field(default_factory=dict)
    phases: list[dict[str, object]] = field(default_factory=list)
    ready: Ready | None = None
    handed: int = 0  # how many of the store's series `ready` has been given

    def hand_over(self) -> None:
        """Give `ready` the series added since the last call (they are final)."""
        if self.ready is not None and len(self.store.series) > self.handed:
            keys = list(self.store.series)[self.handed:]
            self.handed += len(keys)
            self.ready({k: self.store.series[k] for k in keys})

    def host_record(self, host: str) -> dict[str, Any]:
        """The manifest's record of one host (`hosts: [{"name": …}]`), or {}."""
        hosts = self.manifest.hosts if isinstance(self.manifest.hosts, list) else []
        return next((h for h in hosts if isinstance(h, dict) and h.get("name") == host), {})


def _nconnect(info: MountInfo | None, recorded: Any) -> int:
    """nconnect of the mount: the kernel's effective options (the first complete mountstats snapshot), else
    the options the manifest recorded from the host's mountstats (`mount_options.<host>.mountstats_opts`);
    1 when neither says."""
    opts = info.opts if info is not None else None
    if opts is None and isinstance(recorded, dict) and isinstance(recorded.get("mountstats_opts"), str):
        opts = options(recorded["mountstats_opts"])
    value = (opts or {}).get("nconnect", "")
    return int(value) if value.isdigit() else 1


def _bundle_file(cls: type[F], path: Path, warnings: list[str]) -> F | None:
    """A bundle JSON file through its dataclass; None (with a warning) when absent, unreadable or not an
    object. One of an unknown or newer schema_version, or with keys its version does not know, is refused
    (StateError naming the file): read as if it were known, it could mean anything."""
    doc = read_json(path, warnings)
    if doc is not None and not isinstance(doc, dict):
        warnings.append(f"{path}: not a JSON object; ignored")
        return None
    return None if doc is None else cls.from_dict(doc, where=str(path))


def monitor_records(path: Path, warnings: list[str]) -> list[dict[str, Any]]:
    """monitors.json's monitor records ([] when absent or unreadable)."""
    doc = _bundle_file(Monitors, path, warnings)
    return doc.monitors if doc is not None else []


def _dmon_start(monitors: list[dict[str, Any]]) -> tuple[float | None, float]:
    """Start time and `-d` interval of dmon from monitors.json (used only when dmon has no Date/Time)."""
    entry = next((m for m in monitors if m.get("name") == "dmon"), {})
    start = entry.get("started_at")
    cmd = entry.get("command") or ""
    m = re.search(r"-d\s+(\d+)", " ".join(cmd) if isinstance(cmd, list) else str(cmd))
    ok = isinstance(start, (int, float)) and not isinstance(start, bool) and math.isfinite(start)
    interval = float(m[1]) if m and 1 <= int(m[1]) <= 86_400 else 1.0
    return (float(start) if ok and abs(start) < MAX_EPOCH else None), interval


def _monitor_warnings(host: str, monitors: list[dict[str, Any]], warnings: list[str]) -> None:
    for m in monitors:
        errors = m.get("errors") or []
        bad_exit = m.get("exit_status") not in (0, None) and m.get("status") != "stopped"
        if errors or bad_exit:
            detail = "; ".join(str(e) for e in errors)[:300] or f"exit status {m.get('exit_status')}"
            warnings.append(f"{host}: monitor {m.get('name', '?')}: {detail}")


def no_progress(_: str) -> None:
    """A Progress that tells nobody."""


def load_run(run_dir: Path, progress: Progress = no_progress, ready: Ready | None = None) -> RunData:
    """Parse the bundle at `run_dir`; `progress` is told what is being parsed, `ready` given the series of
    each source as soon as they are final (a host's dmon and trainer series once its clock is settled).

    Raises:
        StateError: the directory or its `raw/` folder does not exist.
    """
    raw = run_dir / "raw"
    if not run_dir.is_dir():
        raise StateError("run bundle not found", where=str(run_dir),
                         fix="pass the directory of a run (runs/<run-id>) written by `labctl run`")
    if not raw.is_dir():
        raise StateError("not a run bundle: no raw/ directory", where=str(run_dir),
                         fix="pass the directory of a run (runs/<run-id>) that holds raw/<host>/…")
    run = RunData(run_dir, ready=ready)
    manifest = _bundle_file(Manifest, run_dir / Manifest.FILE, run.warnings)
    if manifest is None:
        run.warnings.append("manifest.json missing or unreadable: versions and mount options unknown")
    else:
        run.manifest = manifest
    for host_dir in sorted(p for p in raw.iterdir() if p.is_dir()):
        host = host_dir.name
        if host.startswith("_"):  # raw/_ontap/: the cluster's counters (labctl/storage), not a host
            continue
        run.hosts.append(host)
        clock = load_clock(host_dir / "clock.json", run.warnings)
        mount_path = run.host_record(host).get("mount")
        by_host = run.manifest.mount_options
        recorded = by_host.get(host) if isinstance(by_host, dict) else None
        _load_host(run, host, host_dir, clock, mount_path if isinstance(mount_path, str) else None, recorded,
                   progress)
    if not run.hosts:
        run.warnings.append(f"{raw}: no host directories")
    phases, stats = parse_runner_events(run_dir / "events")
    run.phases = phases
    if stats.lines:
        run.parse.append(stats)
    return run


def _told(progress: Progress, host: str, path: Path) -> None:
    progress(f"{host}: {path.name} ({path.stat().st_size / 1e6:,.1f} MB)")


def _load_host(run: RunData, host: str, d: Path, clock: HostClock, mount_path: str | None,
               recorded_opts: Any, progress: Progress) -> None:
    store, w = run.store, run.warnings
    offset = _bpftrace_offset(host, d, w)
    if offset is not None:  # first: the smallest of the 1 s sources, so the timeline's writing starts soonest
        _told(progress, host, d / "bpftrace.jsonl")
        res = parse_bpftrace(d / "bpftrace.jsonl", host, store, clock, offset)
        run.bpf[host] = res
        run.parse.append(res.stats)
        if res.lost_events:
            w.append(f"{host}: bpftrace lost {res.lost_events} events")
        run.hand_over()
    _load_nfs_logs(run, host, d, clock, mount_path, recorded_opts, progress)
    run.hand_over()
    monitors = monitor_records(d / Monitors.FILE, w)
    _monitor_warnings(host, monitors, w)
    if (p := d / "dmon.log").exists():
        _told(progress, host, p)
        start, interval = _dmon_start(monitors)
        run.parse.append(parse_dmon(p, host, store, clock, start_ts=start, interval_s=interval))
    if (p := d / "train.log").exists():
        tl = parse_trainlog(p, host, store, clock)
        run.train[host] = tl
        run.parse.append(tl.stats)
    if not clock.utc_offset_known:
        _infer_utc_offset(run, host)
    run.hand_over()


def _load_nfs_logs(run: RunData, host: str, d: Path, clock: HostClock, mount_path: str | None,
                   recorded_opts: Any, progress: Progress) -> None:
    """nfsiostat (its nconnect: the mount's effective one, from mountstats' first complete snapshot, else the
    manifest's), then mountstats: each from the agent's compact record when there is a usable one, else from
    its verbatim log."""
    ms, nf = d / "mountstats.log", d / "nfsiostat.log"
    for log in (ms, nf):  # the evidence behind the compact records: refused by name unless a regular file
        if log.exists():
            open_raw(log).close()
    info = first_mount_info(ms, mount_path) if ms.exists() else None
    if info is not None:
        run.mounts[host] = info
    if nf.exists():
        _told(progress, host, nf)
        nconnect = _nconnect(info, recorded_opts)
        compact = d / "nfsiostat.f64"
        stats = (read_nfsiostat_record(compact, host, run.store, clock, nconnect=nconnect) if compact.exists()
                 else None)
        run.parse.append(stats or parse_nfsiostat(nf, host, run.store, clock, nconnect=nconnect))
        run.hand_over()
    if ms.exists():
        _told(progress, host, ms)
        compact = d / "mountstats.f64"
        stats = read_mountstats(compact, host, run.store, clock) if compact.exists() else None
        run.parse.append(stats or parse_mountstats_log(ms, host, run.store, clock, mount=mount_path)[0])


def _bpftrace_offset(host: str, d: Path, w: list[str]) -> float | None:
    """The clock offset of `d`/bpftrace.jsonl (CLOCK_REALTIME − CLOCK_BOOTTIME); None when there is no trace
    or no usable offset."""
    if not (d / "bpftrace.jsonl").exists():
        return None
    meta_path = d / "bpftrace.meta.json"
    meta = read_json(meta_path, w)
    meta = meta if isinstance(meta, dict) else {}
    offset = meta.get("realtime_minus_boottime")
    if offset is None:
        w.append(f"{meta_path}: no realtime_minus_boottime; bpftrace series skipped")
        return None
    key = "realtime_minus_boottime"
    offset = finite_number(offset, path=meta_path, key=key, limit=MAX_EPOCH)
    checks = meta.get("checks")
    drift = [abs(finite_number(c.get(key, offset), path=meta_path, key=f"checks[].{key}", limit=MAX_EPOCH)
                 - offset) for c in (checks if isinstance(checks, list) else []) if isinstance(c, dict)]
    if drift and max(drift) > 0.1:
        w.append(f"{host}: CLOCK_REALTIME stepped by up to {max(drift):.3f} s during the run (NTP?)")
    return float(offset)


def _infer_utc_offset(run: RunData, host: str) -> None:
    """dmon and the trainer print local time: if their median time sits a whole number of quarter hours away
    from the epoch-stamped sources' median, shift them by that amount (clock.json had no utc_offset_s)."""
    store = run.store
    local = [s for k, s in store.series.items() if k[0] == host and k[2] in ("dmon", "trainer") and len(s.ts)]
    ref = [s for k, s in store.series.items()
           if k[0] == host and k[2] in ("mountstats", "nfsiostat", "bpftrace") and len(s.ts)]
    if not local or not ref:
        return
    def median(group: list[Series]) -> float:  # robust to a few garbled timestamps
        import statistics  # here: its imports (fractions, decimal) would delay every parse's start

        return statistics.median(t for s in group for t in s.ts[:: max(len(s.ts) // 500, 1)])

    delta = median(local) - median(ref)
    quarter = round(delta / 900.0) * 900.0
    if abs(quarter) < 900 or abs(delta - quarter) > 300:
        return
    for s in local:
        s.ts = np.asarray(s.ts, dtype=np.float64) - quarter  # a new array: one may share its buffer
    tl = run.train.get(host)
    if tl is not None:
        for item in tl.saves + tl.events:
            for key in ("ts", "next_ts"):
                if isinstance(item.get(key), float):
                    item[key] -= quarter
        for attr in ("train_start", "train_end", "last_line_ts"):
            if getattr(tl, attr) is not None:
                setattr(tl, attr, getattr(tl, attr) - quarter)
    run.warnings.append(f"{host}: dmon/trainer local time is {quarter / 3600:+.2f} h from UTC "
                        "(inferred; add utc_offset_s to clock.json)")
