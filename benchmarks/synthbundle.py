# ruff: noqa: E501  (raw-format templates read best on one line)
"""A synthetic run bundle in the real raw formats, with known checkpoints (tests and benchmarks).

GPU samples at second t cover (t-1, t]. Checkpoint k starts S = train_start + offset: intervals ending at
S+1 … S+D carry its bytes and idle GPUs (blocking D s), then `suppression_s` seconds run at
`suppression_util`. Expected stall = Σ (D + suppression_s·(B − suppression_util)/B) / train_s.
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

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
    manifest = {"run_id": run_dir.name, "experiment": {"name": "synthetic", "epochs": spec.epochs},
                "versions": {"labctl": "0.1.0", "llmstudio": "v1.2.0", "ontap": "9.14.1", "driver": "550.54.15"},
                "mount": {"path": mount, "options": opts}, "dataset": {"size_bytes": spec.dataset_bytes},
                "times": {"start": spec.start_epoch, "end": spec.end_epoch}}
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    for rank, host in enumerate(spec.hosts):
        view = plan if rank == 0 else plan.for_other_host()
        d = run_dir / "raw" / host
        d.mkdir(parents=True, exist_ok=True)
        clock = {"offset_s": 0.0, "measured_at": spec.start_epoch}
        if spec.declare_utc_offset:
            clock["utc_offset_s"] = spec.utc_offset_s
        (d / "clock.json").write_text(json.dumps(clock))
        (d / "monitors.json").write_text(json.dumps({"dmon": {"command": "nvidia-smi dmon -s pucvmet -o DT -d 1",
                                                              "start": spec.start_epoch, "exit": 0}}))
        if "dmon" in spec.sources:
            _dmon(d / "dmon.log", view, spec)
        if "mountstats" in spec.sources:
            _mountstats(d / "mountstats.log", view, spec, mount, opts)
        if "nfsiostat" in spec.sources:
            _nfsiostat(d / "nfsiostat.log", view, mount)
        if "bpftrace" in spec.sources:
            _bpftrace(d, view, spec, mount)
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
    names = "#Date        Time         gpu    pwr  gtemp  mtemp     sm    mem    enc    dec   mclk   pclk     fb\n"
    units = "#YYYYMMDD    HH:MM:SS     Idx      W      C      C      %      %      %      %    MHz    MHz     MB\n"
    with path.open("w") as fh:
        for i, u in enumerate(plan.util):
            if i % 600 == 0:
                fh.write(names + units)
            st = _local(spec, plan.t0 + i)
            day, hms = time.strftime("%Y%m%d", st), time.strftime("%H:%M:%S", st)
            for g in range(spec.gpus):
                fh.write(f" {day}    {hms}  {g:>6} {int(80 + 6 * u):>6} {55:>6} {'-':>6} {round(u):>6} {round(u / 2):>6}"
                         f" {0:>6} {0:>6} {2619:>6} {1980:>6} {30000:>6}\n")


def _op(name: str, v: list[int]) -> str:
    return f"\t{name:>12}: {' '.join(str(x) for x in v)}\n"


def _mountstats(path: Path, plan: _Plan, spec: SynthSpec, mount: str, opts: str) -> None:
    head = (f"device 10.0.0.3:/fg_llm mounted on {mount} with fstype nfs4 statvers=1.1\n"
            f"\topts:\trw,{opts},namlen=255,acregmin=3,acregmax=60,acdirmin=30,acdirmax=60,timeo=600,retrans=2,"
            "sec=sys,clientaddr=10.0.0.21,local_lock=none\n")
    mid = ("\tcaps:\tcaps=0x3fff7,wtmult=512,dtsize=32768,bsize=0,namlen=255\n"
           "\tnfsv4:\tbm0=0xfdffafff,bm1=0xf9be3e,bm2=0x800,acl=0x0,sessions,pnfs=LAYOUT_NFSV4_1_FILES,"
           "lease_time=90,lease_expired=0\n\tsec:\tflavor=1,pseudoflavor=1\n")
    tail = "".join(_op(n, [0] * 9) for n in OPS_TAIL) + "\n"
    rb = wb = rops = wops = commit = sends = fsync = 0
    with path.open("w") as fh:
        for i in range(len(plan.util)):
            t = plan.t0 + i
            rb += plan.read[i]
            wb += plan.write[i]
            rops += -(-plan.read[i] // MiB)
            wops += -(-plan.write[i] // MiB)
            c = plan.ckpt_at.get(i - 1)
            if c is not None:
                commit += 1
                fsync += 1
            sends = rops + wops + commit
            per = sends // spec.nconnect
            xprts = "".join(f"\txprt:\ttcp {800 + k} 1 1 0 0 {per} {per} 0 {per * 3} 0 64 0 {per}\n"
                            for k in range(spec.nconnect))
            fh.write(f"#ts {t}.000 {1000 + i}.000\n" + head + f"\tage:\t{100 + i}\n" + mid
                     + f"\tevents:\t0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 {fsync} 0 0 0 0 0 0 0 0 0 0 {wops} \n"
                     + f"\tbytes:\t{rb} {wb} 0 0 {rb} {wb} {rb // 4096} {wb // 4096} \n"
                     + "\tRPC iostats version: 1.1  p/v: 100003/4 (nfs)\n" + xprts + "\tper-op statistics\n"
                     + _op("READ", [rops, rops, 0, rops * 200, rb + rops * 120, rops // 10, rops * 2, rops * 2, 0])
                     + _op("WRITE", [wops, wops, 0, wb + wops * 200, wops * 120, wops, wops * 5, wops * 6, 0])
                     + _op("COMMIT", [commit, commit, 0, commit * 200, commit * 100, 0, commit * 50, commit * 50, 0])
                     + _op("GETATTR", [i, i, 0, i * 200, i * 240, 0, i, i, 0]) + tail)


def _nfsiostat(path: Path, plan: _Plan, mount: str) -> None:
    hdr = ("read:              ops/s            kB/s           kB/op         retrans    avg RTT (ms)    avg exe (ms)"
           "  avg queue (ms)          errors\n")
    with path.open("w") as fh:
        for i in range(len(plan.util)):
            r, w = plan.read[i], plan.write[i]
            ro, wo = -(-r // MiB), -(-w // MiB)
            fh.write(f"#ts {plan.t0 + i}.000\n\n10.0.0.3:/fg_llm mounted on {mount}:\n\n"
                     f"{'ops/s':>16}{'rpc bklog':>16}\n{ro + wo:16.3f}{0:16.3f}\n\n" + hdr
                     + f"{ro:24.3f}{r / 1024:16.3f}{(r / 1024 / ro if ro else 0):16.3f}{'0 (0.0%)':>16}"
                       f"{2.0:16.3f}{2.0:16.3f}{0.1:16.3f}{'0 (0.0%)':>16}\n"
                     + hdr.replace("read: ", "write:")
                     + f"{wo:24.3f}{w / 1024:16.3f}{(w / 1024 / wo if wo else 0):16.3f}{'0 (0.0%)':>16}"
                       f"{5.0:16.3f}{6.0:16.3f}{1.0:16.3f}{'0 (0.0%)':>16}\n")


def _bpftrace(d: Path, plan: _Plan, spec: SynthSpec, mount: str) -> None:
    boot = 1_000_000_000_000  # ns since boot at start
    offset = plan.t0 - boot / 1e9
    (d / "bpftrace.meta.json").write_text(json.dumps({"realtime_minus_boottime": offset}))
    seconds = spec.bpftrace_seconds or len(plan.util)
    n = len(plan.util)
    hist = ('{"type": "hist", "data": {"@read_size": [{"min": 4096, "max": 8191, "count": 3}, '
            '{"min": 65536, "max": 131071, "count": 1}, {"min": 1048576, "max": 2097151, "count": %d}]}}\n')
    with (d / "bpftrace.jsonl").open("w") as fh:
        fh.write('{"type": "attached_probes", "data": {"probes": 31}}\n')
        fh.write(f'{{"type": "printf", "data": "start {boot}\\n"}}\n')
        for i in range(1, seconds):
            k = i % n if i >= n else i
            fh.write(f'{{"type": "printf", "data": "tick {boot + i * 1_000_000_000}\\n"}}\n')
            r, w = plan.read[k], plan.write[k]
            if r:
                fh.write(f'{{"type": "map", "data": {{"@read_bytes": {{"pt_data_worker": {r - r // 8}, '
                         f'"python": {r // 8}}}}}}}\n')
                fh.write(f'{{"type": "map", "data": {{"@read_calls": {{"pt_data_worker": {-(-r // MiB)}}}}}}}\n')
                fh.write(hist % (-(-r // MiB)))
            if w:
                fh.write(f'{{"type": "map", "data": {{"@write_bytes": {{"python": {w}}}}}}}\n')
                fh.write(f'{{"type": "map", "data": {{"@write_calls": {{"python": {-(-w // MiB)}}}}}}}\n')
                fh.write('{"type": "hist", "data": {"@write_size": [{"min": 1024, "max": 2047, "count": 1}, '
                         f'{{"min": 33554432, "max": 67108863, "count": {w // (32 * MiB)}}}]}}}}\n')
            if (k - 1) in plan.ckpt_at:
                fh.write(f'{{"type": "map", "data": {{"@ckpt_open": {{"python,{mount}/output/checkpoint.pth": 1}}}}}}\n')
        fh.write('\n\n')


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
