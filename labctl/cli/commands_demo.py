"""`labctl demo`: the whole lab, end to end, on the simulated lab."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console


@click.command("demo")
@click.option("--dir", "lab_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-lab"),
              show_default=True, help="Where the simulated lab, its inventory and the run bundle live.")
@click.option("--hosts", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Number of simulated GPU hosts.")
@click.option("--keep", is_flag=True, help="Leave the simulated lab running afterwards.")
@click.option("--experiment", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Experiment file [default: the simulated lab's reference experiment].")
def demo(lab_dir: Path, hosts: int, keep: bool, experiment: Path | None) -> None:
    """Simulated lab up → provision → reference experiment (emulated) → report → teardown → lab down."""
    from labctl.demo import headline, run_demo

    console = Console(highlight=False)
    result = run_demo(lab_dir, hosts=hosts, keep=keep, experiment=experiment, console=console)
    console.rule("labctl demo")
    for line in headline(result.summary):
        console.print(line)
    console.print("phases: " + ", ".join(f"{k} {v:.0f}s" for k, v in result.timings.items()))
    if keep:
        console.print(f"the simulated lab is still running; stop it with `labctl sim down --dir {lab_dir}`")
    console.print(f"report: {result.report}")  # last, so that `demo | tail -1` is the report's path


COMMANDS = [demo]
