"""Scale: provision + a tiny run on 8 simulated GPU hosts against 1 host (root only).

    python -m benchmarks --only scale_hosts [--quick]

For N = 1 and N = 8 (`--quick`: 1 and 2): `sim_up` a fresh simulated lab with N hosts (untimed), then time
`labctl -i INV provision` (storage, then the hosts phase: Ansible on every host at once, up to its forks)
and `labctl -i INV run tiny.yaml` (the emulated trainer, about ten seconds of training per host, the
monitors of the simulated-lab reference experiment, collection into a bundle), each as a `python -m labctl`
process as a user runs them. Then teardown and `sim_down` (untimed). Goal: N = 8 takes at most 2× N = 1.
Without root (the simulated hosts need mount namespaces) it is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.installed import compile_labctl

NAME = "scale_hosts"
GOAL = 2.0

TINY = {
    "name": "bench-scale",
    "hosts": "gpu_hosts",
    "gpus_per_host": 1,
    "trainer": "emulate",
    "training": {"epochs": 2, "evaluation_epochs": 1.0, "save_checkpoint": "last"},
    "dataset": {"name": "oasst"},
    "monitors": {"dmon_interval_s": 1, "nfsiostat_interval_s": 1, "mountstats_interval_s": 1.0,
                 "bpftrace": True, "lead_s": 1, "tail_s": 1},
    "emulate": {"steps_per_epoch": 10, "step_compute_s": 0.4, "read_bytes_per_step": 1 << 20,
                "startup_s": 1.0, "validation_s": 0.5, "checkpoint_bytes": 16 << 20,
                "dataset_bytes": 16 << 20},
}


def not_here() -> str | None:
    """Why the simulated lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root: simulated GPU hosts run in their own mount namespaces (run as root, or skip it)"
    if not Path("/usr/sbin/sshd").exists():
        return "needs sshd (apt-get install openssh-server; scripts/setup.sh does it)"
    if not shutil.which("unshare"):
        return "needs unshare (util-linux)"
    if not Path("/dev/fuse").exists():
        return "needs /dev/fuse (the simulated NFS mounts are FUSE)"
    return None


def _labctl(inventory: Path, *args: str, env: dict[str, str]) -> float:
    """`python -m labctl -i INV ARGS…` → seconds; raises with its output when it fails."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "labctl", "-i", str(inventory), *args],
                          capture_output=True, text=True, env=env, timeout=3600, stdin=subprocess.DEVNULL)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"labctl {' '.join(args)} failed ({proc.returncode}): "
                           f"{(proc.stdout + proc.stderr)[-2500:]}")
    return took


def one_lab(base: Path, hosts: int) -> dict[str, float]:
    """sim_up N hosts, time provision + run, tear down; seconds per phase."""
    from labctl.testlab.lab import sim_down, sim_up

    lab_dir = base / f"lab{hosts}"
    t = time.perf_counter()
    lab = sim_up(lab_dir, hosts)
    times = {"sim_up": time.perf_counter() - t}
    inventory = Path(lab["inventory"])
    env = dict(os.environ, COLUMNS="200", LABCTL_STATE_DIR=str(lab_dir / "state"))
    env.pop("LABCTL_INVENTORY", None)
    try:
        experiment = lab_dir / "tiny.yaml"
        experiment.write_text(yaml.safe_dump(TINY, sort_keys=False), encoding="utf-8")
        times["provision"] = _labctl(inventory, "provision", env=env)
        runs = str(lab_dir / "runs")
        times["run"] = _labctl(inventory, "run", str(experiment), "--runs-dir", runs, env=env)
        try:
            _labctl(inventory, "teardown", "--yes", env=env)
        except RuntimeError as exc:  # untimed cleanup; sim_down stops everything anyway
            print(f"scale_hosts: teardown of the {hosts}-host lab failed: {str(exc)[:300]}", file=sys.stderr)
    finally:
        sim_down(lab_dir)
    return times


def bench(quick: bool = False) -> list[dict[str, Any]]:
    """1 host vs 8 (quick: 2); returns result records (see benchmarks/__main__.py)."""
    reason = not_here()
    if reason:
        return [{"name": NAME, "skipped": reason}]
    many = 2 if quick else 8
    compile_labctl()  # labctl's processes start as an installed labctl's do
    base = Path(tempfile.mkdtemp(prefix="lbscale-"))  # not under /var/tmp or /mnt: the hosts mount over those
    try:
        one = one_lab(base, 1)
        lots = one_lab(base, many)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    a = lots["provision"] + lots["run"]
    b = one["provision"] + one["run"]
    ratio = a / b
    return [{
        "name": NAME, "a": a, "b": b, "unit": "s", "ratio": ratio, "goal": f"≤ {GOAL:g}x",
        "passed": ratio <= GOAL,
        "detail": f"provision + tiny run, {many} hosts vs 1 (`python -m labctl` processes): provision "
                  f"{lots['provision']:.1f} s vs {one['provision']:.1f} s, run {lots['run']:.1f} s vs "
                  f"{one['run']:.1f} s; untimed sim_up {lots['sim_up']:.1f} s vs {one['sim_up']:.1f} s; "
                  f"{os.cpu_count()} CPUs",
    }]


if __name__ == "__main__":
    from benchmarks.__main__ import main

    sys.exit(main(["--only", NAME, *sys.argv[1:]]))
