# ruff: noqa: E501  (raw-format templates read best on one line)
"""A synthetic run bundle in the real raw formats, with known checkpoints (tests and benchmarks).

GPU samples at second t cover (t-1, t]. Checkpoint k starts S = train_start + offset: intervals ending at
S+1 … S+D carry its bytes and idle GPUs (blocking D s), then `suppression_s` seconds run at
`suppression_util`. Expected stall = Σ (D + suppression_s·(B − suppression_util)/B) / train_s.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from labctl.formats import bpftrace, dmon, mountstats, nfsiostat, procmounts, records
from labctl.formats.bundle import Manifest, Monitors

MiB = 2**20
OPS_TAIL = ["NULL", "OPEN_CONFIRM", "OPEN_NOATTR", "OPEN_DOWNGRADE", "CLOSE", "SETATTR", "FSINFO", "RENEW",
            "LOCK", "LOCKT", "LOCKU", "ACCESS", "LOOKUP", "LOOKUP_ROOT", "REMOVE", "RENAME", "LINK", "SYMLINK",
            "CREATE", "PATHCONF", "STATFS", "READLINK", "READDIR", "SERVER_CAPS", "DELEGRETURN", "GETACL",
            "SETACL", "FS_LOCATIONS", "RELEASE_LOCKOWNER", "SECINFO", "FSID_PRESENT", "EXCHANGE_ID",
            "CREATE_SESSION", "DESTROY_SESSION", "SEQUENCE", "GET_LEASE_TIME", "RECLAIM_COMPLETE", "LAYOUTGET",
            "GETDEVICEINFO", "LAYOUTCOMMIT", "LAYOUTRETURN", "SECINFO_NO_NAME", "TEST_STATEID", "FREE_STATEID",
            "GETDEVICELIST", "BIND_CONN_TO_SESSION", "DESTROY_CLIENTID", "SEEK", "ALLOCATE", "DEALLOCATE"]
COMMS = ("python", "pt_data_worker", "pt_autograd_0", "tokenizers", "torch_shm_mgr", "wandb-service")


@dataclass
class SynthCheckpoint:
    """`offset_s` after training start, `duration_s` of writing (and GPU blocking), `bytes` written."""

    offset_s: int
    duration_s: int
    bytes: int


@dataclass
class SynthSpec:
    """What to generate."""

    start_epoch: int = 1_795_959_000
    warmup_s: int = 30
    train_s: int = 900
    cooldown_s: int = 20
    hosts: tuple[str, ...] = ("gpu1",)
    gpus: int = 2
    baseline_util: float = 97.0
    noise: float = 1.0
    checkpoints: list[SynthCheckpoint] = field(default_factory=lambda: [
        SynthCheckpoint(200, 20, 2_000_000_000), SynthCheckpoint(500, 20, 2_000_000_000),
        SynthCheckpoint(800, 20, 2_000_000_000)])
    suppression_s: int = 15
    suppression_util: float = 60.0
    dataset_bytes: int = 600_000_000
    dataset_read_s: int = 60
    epochs: int = 3
    background_write: int = 20_000
    nconnect: int = 4
    utc_offset_s: int = 0  # host local time − UTC (dmon and the trainer log print local time)
    declare_utc_offset: bool = True  # write it into clock.json (else the analysis must infer it)
    seed: int = 7
    bpftrace_seconds: int | None = None  # None: the run's length
    sources: tuple[str, ...] = ("dmon", "mountstats", "nfsiostat", "bpftrace", "train")
    compact: bool = True  # the agent's compact records (*.f64, bpftrace.totals.json) beside the verbatim logs
    dmon_every_s: int = 1  # dmon's -d

    @property
    def train_start(self) -> int:
        return self.start_epoch + self.warmup_s

    @property
    def end_epoch(self) -> int:
        return self.train_start + self.train_s + self.cooldown_s

    def expected_stall_fraction(self) -> float:
        """The stall fraction the analysis should find."""
        per = self.suppression_s * (self.baseline_util - self.suppression_util) / self.baseline_util
        return sum(c.duration_s + per for c in self.checkpoints) / self.train_s


class _Plan:
    """Per-second GPU utilisation and NFS bytes for the interval ending at each second."""

    def __init__(self, spec: SynthSpec) -> None:
        self.spec = spec
        rng = random.Random(spec.seed)
        n = spec.end_epoch - spec.start_epoch + 1
        self.t0 = spec.start_epoch
        self.util = [0.0] * n
        self.write = [0] * n
        self.other_write = [0] * n  # hosts other than the first: no checkpoint writes (rank 0 saves)
        self.read = [0] * n
        ts0 = spec.train_start - self.t0
        for i in range(ts0 + 1, ts0 + spec.train_s + 1):
            self.util[i] = min(100.0, spec.baseline_util + rng.uniform(-spec.noise, spec.noise))
            self.write[i] = self.other_write[i] = spec.background_write
        per_s = spec.dataset_bytes // spec.dataset_read_s
        for i in range(ts0 + 1, ts0 + spec.dataset_read_s + 1):
            self.read[i] = per_s
        self.read[ts0 + spec.dataset_read_s] += spec.dataset_bytes - per_s * spec.dataset_read_s
        self.ckpt_at: dict[int, SynthCheckpoint] = {}
        for c in spec.checkpoints:
            s = ts0 + c.offset_s
            self.ckpt_at[s] = c
            chunk = c.bytes // c.duration_s
            for k in range(1, c.duration_s + 1):
                self.util[s + k] = 0.0
                self.write[s + k] = chunk + (c.bytes - chunk * c.duration_s if k == c.duration_s else 0)
            for k in range(c.duration_s + 1, c.duration_s + spec.suppression_s + 1):
                self.util[s + k] = spec.suppression_util + rng.uniform(-spec.noise, spec.noise)


    def for_other_host(self) -> _Plan:
        """The same run seen from a host that does not write checkpoints (its GPUs still wait)."""
        other = copy.copy(self)
        other.write = self.other_write
        other.ckpt_at = {}
        return other


def write_run(run_dir: Path, spec: SynthSpec | None = None) -> SynthSpec:
    """Write a complete bundle (manifest, raw/<host>/*, events/) into `run_dir`; returns the spec used."""
    spec = spec or SynthSpec()
    plan = _Plan(spec)
    run_dir.mkdir(parents=True, exist_ok=True)
    mount = "/mnt/fg_llm"
    opts = f"vers=4.1,proto=tcp,rsize=1048576,wsize=1048576,hard,nconnect={spec.nconnect}"
    mount_options = {"proc_mounts": [{"device": "10.0.0.1:/fg_llm", "fstype": "nfs4", "options": opts}],
                     "mountstats_opts": opts, "xprt_count": spec.nconnect}
    Manifest(run_id=run_dir.name, state="finished", complete=True, success=True, trainer="emulate",
             experiment={"name": "synthetic", "trainer": "emulate", "training": {"epochs": spec.epochs},
                         "emulate": {"dataset_bytes": spec.dataset_bytes}},
             versions={"labctl": "0.1.0", "llmstudio": "v1.2.0", "ontap": "9.14.1",
                       "hosts": {h: {"gpu_driver": "550.54.15"} for h in spec.hosts}},
             hosts=[{"name": h, "mount": mount} for h in spec.hosts],
             mount_options={h: mount_options for h in spec.hosts},
             times={"started": spec.start_epoch, "ended": spec.end_epoch}).save(run_dir / Manifest.FILE)
    for rank, host in enumerate(spec.hosts):
        view = plan if rank == 0 else plan.for_other_host()
        d = run_dir / "raw" / host
        d.mkdir(parents=True, exist_ok=True)
        clock = {"offset_s": 0.0, "measured_at": spec.start_epoch}
        if spec.declare_utc_offset:
            clock["utc_offset_s"] = spec.utc_offset_s
        (d / "clock.json").write_text(json.dumps(clock))
        dmon_rec = {"name": "dmon", "command": ["nvidia-smi", "dmon", "-s", "pucvmet", "-o", "DT", "-d", "1"],
                "status": "stopped", "started_at": spec.start_epoch, "exit_status": 0, "errors": []}
        Monitors(host=host, run_id=run_dir.name, monitors=[dmon_rec]).save(d / Monitors.FILE)
        if "dmon" in spec.sources:
            _dmon(d / "dmon.log", view, spec)
            if spec.compact:  # as the agent writes it once dmon has stopped
                dmon.write_compact(d / "dmon.log")
        if "mountstats" in spec.sources:
            _mountstats(d, view, spec, mount, opts)
        if "nfsiostat" in spec.sources:
            _nfsiostat(d, view, spec, mount)
        if "bpftrace" in spec.sources:
            _bpftrace(d, view, spec, mount)
            if spec.compact:
                bpftrace.write_compact(d / "bpftrace.jsonl")
        if "train" in spec.sources and rank == 0:
            _trainlog(d / "train.log", view, spec, mount)
    ev = run_dir / "events" / "provision" / "artifacts" / "1" / "job_events"
    ev.mkdir(parents=True, exist_ok=True)
    for i, (kind, host) in enumerate([("playbook_on_start", None), ("runner_on_ok", spec.hosts[0])], 1):
        (ev / f"{i}-x.json").write_text(json.dumps({
            "event": kind, "counter": i, "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(spec.start_epoch - 60)),
            "event_data": {"host": host, "task": "mount", "res": {"changed": True}}}))
    return spec


def _local(spec: SynthSpec, t: int) -> time.struct_time:
    return time.gmtime(t + spec.utc_offset_s)


def _dmon(path: Path, plan: _Plan, spec: SynthSpec) -> None:
    """`nvidia-smi dmon -s pucvmet -o DT` as a current driver prints it (research instrumentation.md §1.1,
    sample A's columns: 22 per GPU, `-` where the board has no value)."""
    names = ("#Date        Time         gpu    pwr  gtemp  mtemp     sm    mem    enc    dec    jpg    ofa   mclk"
             "   pclk  pviol  tviol     fb   bar1   ccpm  sbecc  dbecc    pci  rxpci  txpci\n")
    units = ("#YYYYMMDD    HH:MM:SS     Idx      W      C      C      %      %      %      %      %      %    MHz"
             "    MHz      %   bool     MB     MB     MB   errs   errs   errs   MB/s   MB/s\n")
    with path.open("w") as fh:
        for i, u in enumerate(plan.util):
            if i % spec.dmon_every_s:
                continue
            if i % 600 == 0:
                fh.write(names + units)
            st = _local(spec, plan.t0 + i)
            day, hms = time.strftime("%Y%m%d", st), time.strftime("%H:%M:%S", st)
            rx, tx = plan.read[i] // MiB // spec.gpus, round(u * 3)
            for g in range(spec.gpus):
                fh.write(f" {day}    {hms}  {g:>6} {int(80 + 6 * u):>6} {55:>6} {'-':>6} {round(u):>6}"
                         f" {round(u / 2):>6}{0:>7}{0:>7}{0:>7}{0:>7} {2619:>6} {1980:>6}{0:>7}{0:>7} {30000:>6}"
                         f" {2:>6}{0:>7} {'-':>6} {'-':>6}{0:>7} {rx:>6} {tx:>6}\n")


def _mountstats(d: Path, plan: _Plan, spec: SynthSpec, mount: str, opts: str) -> None:
    """mountstats.log and, with `spec.compact`, the agent's mountstats.f64 of the same snapshots."""
    e = mountstats.Entry("10.0.0.3:/fg_llm", mount, "nfs4", "1.1", procmounts.options(
        f"rw,{opts},namlen=255,acregmin=3,acregmax=60,acdirmin=30,acdirmax=60,timeo=600,retrans=2,sec=sys,"
        "clientaddr=10.0.0.21,local_lock=none"),
        {"caps": "caps=0x3fff7,wtmult=512,dtsize=32768,bsize=0,namlen=255",
         "nfsv4": "bm0=0xfdffafff,bm1=0xf9be3e,bm2=0x800,acl=0x0,sessions,pnfs=LAYOUT_NFSV4_1_FILES,"
                  "lease_time=90,lease_expired=0", "sec": "flavor=1,pseudoflavor=1"},
        rpc="1.1  p/v: 100003/4 (nfs)")
    rb = wb = rops = wops = commit = sends = fsync = 0
    rows = records.Appender(d / "mountstats.f64", mountstats.COLUMNS)
    with (d / "mountstats.log").open("w") as fh, contextlib.closing(rows):
        for i in range(len(plan.util)):
            rb += plan.read[i]
            wb += plan.write[i]
            rops += -(-plan.read[i] // MiB)
            wops += -(-plan.write[i] // MiB)
            if plan.ckpt_at.get(i - 1) is not None:
                commit += 1
                fsync += 1
            sends = rops + wops + commit
            per = sends // spec.nconnect
            e.age = 100 + i
            e.events = [0] * 15 + [fsync] + [0] * 10 + [wops]
            e.bytes = [rb, wb, 0, 0, rb, wb, rb // 4096, wb // 4096]
            e.xprts = [("tcp", [800 + k, 1, 1, 0, 0, per, per, 0, per * 3, 0, 64, 0, per])
                       for k in range(spec.nconnect)]
            e.ops = {"READ": [rops, rops, 0, rops * 200, rb + rops * 120, rops // 10, rops * 2, rops * 2, 0],
                     "WRITE": [wops, wops, 0, wb + wops * 200, wops * 120, wops, wops * 5, wops * 6, 0],
                     "COMMIT": [commit, commit, 0, commit * 200, commit * 100, 0, commit * 50, commit * 50, 0],
                     "GETATTR": [i, i, 0, i * 200, i * 240, 0, i, i, 0], **{n: [0] * 9 for n in OPS_TAIL}}
            fh.write(mountstats.format_snapshot(plan.t0 + i, 1000 + i, e.format()))
            if spec.compact:
                rows.row(mountstats.record(plan.t0 + i, 1000 + i, e))
    if not spec.compact:
        (d / "mountstats.f64").unlink()


def _nfsiostat(d: Path, plan: _Plan, spec: SynthSpec, mount: str) -> None:
    """nfsiostat.log as the agent logs it and, with `spec.compact`, its nfsiostat.f64 (as the agent reads it)."""
    rows = records.Appender(d / "nfsiostat.f64", nfsiostat.COLUMNS)
    with (d / "nfsiostat.log").open("w") as fh, contextlib.closing(rows):
        wide = nfsiostat.Rows(rows.row)
        reader = nfsiostat.Reader(wide.sink)
        for i in range(len(plan.util)):
            r, w = plan.read[i], plan.write[i]
            ro, wo = -(-r // MiB), -(-w // MiB)
            block = f"#ts {plan.t0 + i}.000\n" + nfsiostat.format_block("10.0.0.3:/fg_llm", mount, (ro + wo, 0.0), [
                ("read", [ro, r / 1024, r / 1024 / ro if ro else 0, 2.0, 2.0, 0.1], (0, 0.0), (0, 0.0)),
                ("write", [wo, w / 1024, w / 1024 / wo if wo else 0, 5.0, 6.0, 1.0], (0, 0.0), (0, 0.0))])
            fh.write(block)
            if spec.compact:
                wide.flush()
                for line in block.splitlines():
                    reader.line(line)
        wide.flush()
    if not spec.compact:
        (d / "nfsiostat.f64").unlink()


def _bpftrace(d: Path, plan: _Plan, spec: SynthSpec, mount: str) -> None:
    """The shipped program's output: a tick and its @io line per second, the run's totals at the end."""
    boot = 1_000_000_000_000  # ns since boot at start
    offset = plan.t0 - boot / 1e9
    (d / "bpftrace.meta.json").write_text(json.dumps({"realtime_minus_boottime": offset}))
    seconds = spec.bpftrace_seconds or len(plan.util)
    n = len(plan.util)
    totals: dict[str, dict[str, int]] = {m: {} for m in bpftrace.SUM_MAPS}
    hists: dict[str, dict[tuple[int, int], int]] = {m: {} for m in bpftrace.HIST_MAPS}

    def count(table: dict, key: object, value: int) -> None:
        table[key] = table.get(key, 0) + value

    with (d / "bpftrace.jsonl").open("w") as fh:
        fh.write(bpftrace.record("attached_probes", {"probes": 31}) + "\n" + bpftrace.marker("start", boot) + "\n")
        for i in range(1, seconds):
            k = i % n if i >= n else i
            fh.write(bpftrace.marker("tick", boot + i * 1_000_000_000) + "\n")
            r, w = plan.read[k], plan.write[k]
            io = {}
            if r:
                io |= {"0": r, "2": -(-r // MiB)}
                count(totals["read_bytes"], "pt_data_worker", r - r // 8)
                count(totals["read_bytes"], "python", r // 8)
                count(totals["read_calls"], "pt_data_worker", -(-r // MiB))
                for key, c in (((4096, 8191), 3), ((65536, 131071), 1), ((1048576, 2097151), -(-r // MiB))):
                    count(hists["read_size"], key, c)
            if w:
                io |= {"1": w, "3": -(-w // MiB)}
                count(totals["write_bytes"], "python", w)
                count(totals["write_calls"], "python", -(-w // MiB))
                for key, c in (((1024, 2047), 1), ((33554432, 67108863), w // (32 * MiB))):
                    count(hists["write_size"], key, c)
            if io:
                fh.write(bpftrace.record("map", {"@io": io}) + "\n")
            if (k - 1) in plan.ckpt_at:
                fh.write(bpftrace.record("map", {"@ckpt_open": {f"python,{mount}/output/checkpoint.pth": 1}}) + "\n")
        fh.write(bpftrace.marker("totals", boot + seconds * 1_000_000_000) + "\n")
        for m, by_comm in totals.items():
            if by_comm:
                fh.write(bpftrace.record("map", {f"@{m}": by_comm}) + "\n")
        for m, buckets in hists.items():
            if buckets:
                fh.write(bpftrace.record("hist", {f"@{m}": [{"min": a, "max": b, "count": c}
                                                             for (a, b), c in sorted(buckets.items())]}) + "\n")
        fh.write(bpftrace.marker("end", boot + seconds * 1_000_000_000) + "\n\n\n")


def _trainlog(path: Path, plan: _Plan, spec: SynthSpec, mount: str) -> None:
    def stamp(t: float) -> str:
        st = _local(spec, int(t))
        return time.strftime("%Y-%m-%d %H:%M:%S", st) + f",{int((t % 1) * 1000):03d}"

    lines: list[tuple[float, str]] = [(plan.t0 + 1, "Problem Type: text_causal_language_modeling"),
                                      (plan.t0 + 2, "Loading h2oai/h2ogpt-4096-llama2-13b. This may take a while."),
                                      (plan.t0 + 20, "Loaded h2oai/h2ogpt-4096-llama2-13b.")]
    per_epoch = spec.train_s / spec.epochs
    total = 43
    for e in range(spec.epochs):
        t_e = spec.train_start + e * per_epoch
        lines.append((t_e, f"Training Epoch: {e + 1} / {spec.epochs}"))
        for n in range(0, total + 1, 3 if total > 3 else 1):
            loss = 2.0 - 0.3 * (e + n / total)
            lines.append((t_e + per_epoch * n / total + 0.01,
                          f"train loss: {loss:.2f}: {100 * n // total:3d}%|#         | {n}/{total} "
                          f"[00:10<00:50,  1.00it/s]"))
        lines.append((t_e + per_epoch, f"train loss: {2.0 - 0.3 * (e + 1):.2f}: 100%|##########| {total}/{total} "
                                       "[00:10<00:00,  1.00it/s]"))
    for k, (s, c) in enumerate(sorted(plan.ckpt_at.items())):
        t = plan.t0 + s
        lines.append((t - 0.5, f"Evaluation step: {k + 1}"))
        lines.append((t - 0.2, f"Saving last model checkpoint to {mount}/output"))
        lines.append((t + c.duration_s + 0.3, "Starting validation inference"))
    busy = [(plan.t0 + s - 0.5, plan.t0 + s + c.duration_s + 0.5) for s, c in plan.ckpt_at.items()]
    lines = [(t, m) for t, m in lines if not (m.startswith("train loss") and any(a < t < b for a, b in busy))]
    lines.sort(key=lambda x: x[0])
    with path.open("w") as fh:
        for t, msg in lines:
            fh.write(f"{stamp(t)} - INFO: {msg}\n")
