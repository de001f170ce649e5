"""`labctl demo`: the whole mission on the simulated lab, one phase after another.

simulated lab up → provision (storage + hosts) → run the reference experiment (emulated) → report →
teardown → lab down (unless kept). Like the CLI, this module is allowed to meet both the simulated lab
(`labctl.testlab`) and the client side; the library code on either side never imports the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from labctl import paths
from labctl.errors import LabctlError, RunError, UsageError

PHASES = ("lab up", "provision", "run", "report", "teardown", "lab down")


@dataclass
class DemoResult:
    """What the demo produced: where things are and the headline numbers."""

    lab_dir: Path
    bundle: Path | None = None
    report: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    kept: bool = False


def _phase(progress: Progress, task: Any, result: DemoResult, name: str, fn: Callable[[], Any]) -> Any:
    progress.update(task, description=f"[bold]{name}")
    started = time.monotonic()
    try:
        return fn()
    finally:
        result.timings[name] = round(time.monotonic() - started, 2)
        progress.advance(task)


def run_demo(lab_dir: Path, *, hosts: int = 2, keep: bool = False, experiment: Path | None = None,
             console: Console | None = None) -> DemoResult:
    """Run the whole lab once on the simulated lab in `lab_dir`; tear it all down unless `keep`."""
    from labctl.testlab.lab import LabError, sim_down, sim_up

    if hosts < 1:
        raise UsageError("the demo needs at least one simulated GPU host", where="--hosts")
    console = console or Console()
    lab_dir = lab_dir.resolve()
    result = DemoResult(lab_dir=lab_dir, kept=keep)
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total} phases"), TimeElapsedColumn(),
                        console=console, transient=False)
    lab_up = False
    with progress:
        task = progress.add_task("demo", total=len(PHASES))
        try:
            try:
                lab = _phase(progress, task, result, "lab up", lambda: sim_up(lab_dir, hosts))
            except LabError as exc:
                fix = "run as root on a machine with openssh-server (./scripts/setup.sh)"
                raise LabctlError(str(exc), where=str(lab_dir), fix=fix) from exc
            lab_up = True
            inventory = Path(lab["inventory"])
            exp_file = experiment or (Path(lab["experiment"]) if lab.get("experiment") else None)
            if exp_file is None:
                raise UsageError("no experiment file", fix="pass --experiment FILE")
            _phase(progress, task, result, "provision", lambda: _provision(inventory, console))
            result.bundle = _phase(progress, task, result, "run",
                                   lambda: _run(exp_file, inventory, lab_dir / "runs", console))
            result.summary = _phase(progress, task, result, "report", lambda: _report(result.bundle))
            result.report = result.bundle / "report.html"
            _phase(progress, task, result, "teardown", lambda: _teardown(inventory, console))
        finally:
            if lab_up and not keep:
                _phase(progress, task, result, "lab down", lambda: sim_down(lab_dir))
    return result


def _provision(inventory: Path, console: Console) -> None:
    from labctl.config.lab import load_lab_config
    from labctl.lab.provision import provision

    cfg = load_lab_config(inventory)
    provision(cfg, paths.state_dir(inventory), only=None, plan=False, console=console)


def _run(experiment: Path, inventory: Path, runs_root: Path, console: Console) -> Path:
    from labctl.experiment.collect import collect, require_success
    from labctl.experiment.follow import follow
    from labctl.experiment.run import start_run

    bundle = start_run(experiment, inventory, runs_root)
    if follow(bundle, console) == "detached":
        raise RunError("the run was detached", where=str(bundle),
                       fix=f"follow it with `labctl attach {bundle}`; the lab was kept running")
    require_success(bundle, collect(bundle))
    return bundle


def _report(bundle: Path) -> dict[str, Any]:
    from labctl.report.analyse import analyse
    from labctl.report.html import write_report

    analysis = analyse(bundle)
    write_report(analysis, bundle / "report.html")
    return analysis.summary


def _teardown(inventory: Path, console: Console) -> None:
    from labctl.config.lab import load_lab_config
    from labctl.lab.teardown import teardown

    cfg = load_lab_config(inventory)
    result = teardown(cfg, paths.state_dir(inventory), only=None, console=console)
    if not result.clean:
        raise LabctlError("teardown left objects behind: " + "; ".join(map(str, result.leftovers)),
                          fix="rerun `labctl teardown --yes` against the kept lab")


def headline(summary: dict[str, Any]) -> list[str]:
    """The demo's closing lines: the numbers the reference lab is known for."""
    gpu = summary.get("gpu") or {}
    nfs = summary.get("nfs") or {}
    lines = []
    util = gpu.get("util_mean_pct")
    lines.append(f"GPU utilisation (mean over training): {'—' if util is None else f'{util:.1f} %'}")
    rb, wb = nfs.get("read_bytes"), nfs.get("write_bytes")
    if rb is not None and wb is not None:
        lines.append(f"NFS bytes read: {rb / 2**20:,.1f} MiB · written: {wb / 2**20:,.1f} MiB")
    ckpts = summary.get("checkpoints") or []
    stall = summary.get("stall_fraction")
    lines.append(f"checkpoints: {len(ckpts)} · GPU time lost to checkpoint writes: "
                 f"{'—' if stall is None else f'{stall * 100:.2f} %'}")
    return lines
