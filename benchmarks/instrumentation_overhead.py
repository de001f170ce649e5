"""Instrumentation overhead: an I/O-heavy emulated training with the monitors on vs off.

    python -m benchmarks --only instrumentation_overhead [--quick]

Locally, no simulated lab needed: the host agent (labctl/experiment/agent as agent.pyz, `run SPEC`) runs in a
private directory shaped like a simulated host: the `nvidia-smi` and `nfsiostat` shims of labctl/testlab on
PATH, a mountstats view holding an nfs4 block for the "mount" (a directory on local disk), and labctl's
bpftrace program rendered for it. "On" is what `labctl run` starts: nvidia-smi dmon, nfsiostat and the
mountstats sampler at 1 s, and bpftrace on the trainer's process tree when this is root with bpftrace;
"off" is the same agent with every monitor disabled. The trainer is labctl's emulator
(labctl/experiment/agent/emulator.py) with an I/O-heavy spec: large reads per step from a shared data set
(page-cached after the first pass, so many read syscalls), short compute, checkpoints written with fsync.
The time measured is the trainer process's own wall time (the agent's lead/tail around it is not
training). Each round runs every variant back to back, the order rotating between rounds (7 rounds). The
ratio is best against best, min(on) / min(off): the monitors' cost is present in every round, while what
other processes on the machine add only ever lengthens a round, so the fastest round of each variant is the
closest to its own cost (the reasoning of Python's `timeit`); the per-round ratios and their median are
printed with it. Full runs add two variants that say where the overhead comes from: bpftrace alone, and the
three samplers alone (lead/tail 2 s as `labctl run`'s defaults).
Limits: the mountstats view is static (its counters do not move) and the I/O lands on local disk, not NFS,
so this measures the monitors' cost to the host, not to the network path.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

NAME = "instrumentation_overhead"
GOAL = 1.02
REPO = Path(__file__).resolve().parents[1]
MONITORS = ("dmon", "nfsiostat", "mountstats", "bpftrace")
# variant → the monitors it runs; "on" and "off" are the measurement, the others (full runs only) say where
# the overhead comes from
VARIANTS: dict[str, frozenset[str]] = {
    "on": frozenset(MONITORS),
    "off": frozenset(),
    "bpftrace_only": frozenset({"bpftrace"}),
    "samplers_only": frozenset({"dmon", "nfsiostat", "mountstats"}),
}

MOUNTSTATS = """device proc mounted on /proc with fstype proc
device 127.0.0.1:/fg_llm mounted on {mount} with fstype nfs4 statvers=1.1
\topts:\trw,vers=4.1,rsize=1048576,wsize=1048576,namlen=255,acregmin=3,acregmax=60,acdirmin=30,\
acdirmax=60,hard,proto=tcp,nconnect=16,timeo=600,retrans=2,sec=sys,clientaddr=127.0.0.11,local_lock=none
\tage:\t100
\tcaps:\tcaps=0x3ffbffff,wtmult=512,dtsize=1048576,bsize=0,namlen=255
\tnfsv4:\tbm0=0xfdffbfff,bm1=0x40f9be3e,bm2=0x60800,acl=0x3,sessions,pnfs=LAYOUT_NFSV4_1_FILES,lease_time=30
\tsec:\tflavor=1,pseudoflavor=1
\tevents:\t0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
\tbytes:\t0 0 0 0 1048576000 524288000 0 0
\tRPC iostats version: 1.1  p/v: 100003/4 (nfs)
{xprts}\tper-op statistics
\t        NULL: 0 0 0 0 0 0 0 0 0
\t        READ: 1000 1000 0 136000 1048704000 200 3000 3500 0
\t       WRITE: 500 500 0 524352000 68000 100 6000 6500 0

"""
XPRT = "\txprt:\ttcp 0 1 1 0 0 100 100 0 100 0 2 0 0\n"


def _spec(quick: bool) -> dict[str, Any]:
    """The emulator's I/O-heavy spec (sizes per --quick)."""
    if quick:
        return {"epochs": 1, "steps_per_epoch": 10, "step_compute_s": 0.02, "read_bytes_per_step": 8 << 20,
                "dataset_bytes": 32 << 20, "checkpoint_bytes": 16 << 20, "startup_s": 0.0,
                "validation_s": 0.04}
    return {"epochs": 3, "steps_per_epoch": 40, "step_compute_s": 0.02, "read_bytes_per_step": 32 << 20,
            "dataset_bytes": 256 << 20, "checkpoint_bytes": 128 << 20, "startup_s": 0.0, "validation_s": 0.08}


def bpftrace_usable() -> str | None:
    """Why bpftrace will not run here (the agent would skip it), or None."""
    if not shutil.which("bpftrace"):
        return "bpftrace is not installed"
    if os.geteuid() != 0:
        return "not root"
    return None


class FakeHost:
    """A directory shaped like a simulated GPU host, for running the agent locally."""

    def __init__(self, root: Path) -> None:
        from labctl.testlab.shims import install_shims

        self.root = root
        self.mount = root / "mnt"
        self.mount.mkdir(parents=True)
        install_shims(root, sys.executable, str(REPO))
        (root / "gpu").mkdir()
        (root / "gpu" / "count").write_text("1\n")
        proc = root / "proc" / "self"
        proc.mkdir(parents=True)
        (proc / "mountstats").write_text(MOUNTSTATS.format(mount=self.mount, xprts=XPRT * 16))
        (root / "proc" / "mounts").write_text(
            f"127.0.0.1:/fg_llm {self.mount} nfs4 rw,vers=4.1,rsize=1048576,wsize=1048576,nconnect=16 0 0\n")
        self.dataset = self.mount / "data" / "train_full.pq"

    def env(self) -> dict[str, str]:
        path = f"{self.root / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        return dict(os.environ, PATH=path, LABCTL_SIM_HOST_ROOT=str(self.root))

    def rundir(self, name: str, emulate: dict[str, Any], monitors: frozenset[str]) -> Path:
        """A run directory with the agent, its spec and the emulator's spec."""
        from labctl.experiment.agent.ship import write_agent
        from labctl.experiment.bpfprogram import render_program

        rundir = self.root / "runs" / name
        (rundir / "agent").mkdir(parents=True)
        write_agent(rundir / "agent")
        (rundir / "agent" / "io_by_second.bt").write_text(render_program(str(self.mount)))
        out = self.mount / "out" / name
        emu = {"output_dir": str(out), "dataset_path": str(self.dataset), "gpus": 1,
               "activity_path": str(self.root / "gpu" / "activity.json"), "write_chunk_bytes": 16 << 20,
               **emulate}
        (rundir / "emulator.json").write_text(json.dumps(emu))
        timing = rundir / "trainer.seconds"
        timer = ("import json, resource, subprocess, sys, time; t = time.perf_counter(); "
                 "rc = subprocess.call(sys.argv[2:]); wall = time.perf_counter() - t; "
                 "r = resource.getrusage(resource.RUSAGE_CHILDREN); "
                 "open(sys.argv[1], 'w').write(json.dumps([wall, r.ru_utime + r.ru_stime])); sys.exit(rc)")
        spec = {
            "run_id": name, "host": "bench", "rundir": str(rundir), "mount": str(self.mount), "gpus": 1,
            "proc_mountstats": str(self.root / "proc" / "self" / "mountstats"),
            "proc_mounts": str(self.root / "proc" / "mounts"), "use_systemd": "never",
            "monitors": {**{m: m in monitors for m in MONITORS}, "dmon_interval_s": 1,
                         "nfsiostat_interval_s": 1, "mountstats_interval_s": 1.0,
                         "lead_s": 2.0, "tail_s": 2.0},
            "bpftrace": {"program": "io_by_second.bt", "strlen": 128, "attach_timeout_s": 30},
            "trainer": {"kind": "emulate", "cwd": str(rundir), "output_dir": str(out),
                        "flags_path": str(out / "flags.json"),
                        "argv": [sys.executable, "-c", timer, str(timing), sys.executable,
                                 str(rundir / "agent" / "agent.pyz"), "emulate",
                                 str(rundir / "emulator.json")]},
        }
        (rundir / "spec.json").write_text(json.dumps(spec))
        return rundir

    def run(self, rundir: Path) -> tuple[tuple[float, float], dict[str, str]]:
        """Run the agent in the foreground; ((trainer wall s, trainer CPU s), {monitor: status})."""
        argv = [sys.executable, str(rundir / "agent" / "agent.pyz"), "run", str(rundir / "spec.json")]
        proc = subprocess.run(argv, env=self.env(), capture_output=True, text=True, timeout=1800)
        status = json.loads((rundir / "status.json").read_text())
        timing = rundir / "trainer.seconds"
        if proc.returncode != 0 or status.get("state") != "finished" or not timing.exists():
            log = (rundir / "raw" / "train.log")
            tail = log.read_text()[-1500:] if log.exists() else ""
            raise RuntimeError(f"the emulated training did not finish ({status.get('state')}): "
                               f"{proc.stderr[-800:]} {tail}")
        monitors = json.loads((rundir / "raw" / "monitors.json").read_text())["monitors"]
        states = {m["name"]: m["status"] + (f" ({m['reason']})" if m.get("reason") else "") for m in monitors}
        out = Path(status["trainer"].get("output_dir") or "")
        shutil.rmtree(out, ignore_errors=True)  # the checkpoint; keeps the disk from filling over rounds
        wall, cpu = json.loads(timing.read_text())
        return (float(wall), float(cpu)), states


def bench(quick: bool = False) -> list[dict[str, Any]]:
    """Run rounds of every variant (order rotating); returns result records (see benchmarks/__main__.py)."""
    rounds = 1 if quick else 7
    names = ["on", "off"] if quick else list(VARIANTS)
    emulate = _spec(quick)
    root = Path(tempfile.mkdtemp(prefix="lbio-", dir="/var/tmp" if Path("/var/tmp").is_dir() else None))
    times: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    monitor_states: dict[str, str] = {}
    try:
        host = FakeHost(root)
        from labctl.experiment.agent.emulator import Emulator, Spec

        prep = Emulator(Spec(output_dir=str(root / "prep"), dataset_path=str(host.dataset),
                             dataset_bytes=emulate["dataset_bytes"]))
        prep.prepare_data()  # one shared data set, written once (untimed): every variant reads the same file
        os.close(prep._data_fd)
        for i in range(rounds):
            for name in names[i % len(names):] + names[:i % len(names)]:
                (took, cpu), states = host.run(host.rundir(f"{name}{i}", emulate, VARIANTS[name]))
                times[name].append(took)
                cpus[name].append(cpu)
                if name == "on":
                    monitor_states = states
    finally:
        shutil.rmtree(root, ignore_errors=True)
    off = times["off"]
    moved = emulate["epochs"] * emulate["steps_per_epoch"] * emulate["read_bytes_per_step"]
    running = ", ".join(f"{k}: {v}" for k, v in monitor_states.items())
    results = []
    for name in names:
        if name == "off":
            continue
        ratios = [a / b for a, b in zip(times[name], off, strict=True)]
        ratio = min(times[name]) / min(off)
        spread = (f"per-round ratios {', '.join(f'{r:.3f}' for r in ratios)} "
                  f"(median {statistics.median(ratios):.3f})")
        record: dict[str, Any] = {
            "name": NAME if name == "on" else f"{NAME}.{name}", "a": min(times[name]),
            "b": min(off), "unit": "s", "ratio": ratio,
            "detail": f"{', '.join(sorted(VARIANTS[name]))} vs none; best of {rounds} round(s); {spread}"}
        if name == "on":
            record.update(goal=f"≤ {GOAL:g}x (≤ {round((GOAL - 1) * 100)} % overhead)", passed=ratio <= GOAL)
            record["detail"] = (
                f"emulated training (trainer wall time), monitors on vs off; best of {rounds} round(s); "
                f"{spread}; reads {moved / 2**20:,.0f} MiB, "
                f"{emulate['epochs']} checkpoint(s) of {emulate['checkpoint_bytes'] >> 20} MiB with fsync; "
                f"monitors {running}")
        else:
            record.update(goal=None, passed=None)
        results.append(record)
        if name == "on":
            cpu_ratios = [a / b for a, b in zip(cpus["on"], cpus["off"], strict=True)]
            per_round = ", ".join(f"{r:.3f}" for r in cpu_ratios)
            results.append({
                "name": f"{NAME}.cpu", "a": statistics.median(cpus["on"]),
                "b": statistics.median(cpus["off"]), "unit": "s", "ratio": statistics.median(cpu_ratios),
                "goal": None, "passed": None,
                "detail": "the trainer's own CPU time, user + sys (bpftrace's probes run in the traced "
                          "task), "
                          f"monitors on vs off; per-round ratios {per_round}"})
    return results


if __name__ == "__main__":
    from benchmarks.__main__ import main

    sys.exit(main(["--only", NAME, *sys.argv[1:]]))
