"""`labctl run | attach | collect`: the instrumented fine-tune, following it, fetching its bundle."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from labctl.paths import inventory_dir

console = Console(highlight=False)

runs_dir_option = click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs"),
    show_default=True,
    envvar="LABCTL_RUNS_DIR",
    help="Where run bundles (runs/<run-id>/) are written.",
)

lost_after_option = click.option(
    "--lost-after",
    "lost_after_s",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    help="Seconds a host may stay unreachable before it is given up (its training goes on; the others "
    "are collected; `labctl collect RUN` fetches it later).",
)


def _finish(bundle: Path) -> None:
    from labctl.experiment.collect import collect, require_complete, require_success

    manifest = collect(bundle)
    n = len(manifest["files"])
    verdict = "[green]finished[/]" if manifest["success"] else f"[red]{manifest['state']}[/]"
    console.print(
        f"run {manifest['run_id']}: {verdict}; {n} files collected into {bundle} "
        f"({'complete' if manifest['complete'] else 'INCOMPLETE'})"
    )
    for err in manifest.get("errors", []):
        console.print(f"[yellow]  {err}")
    require_complete(bundle, manifest)
    require_success(bundle, manifest)


@click.command("run")
@click.argument("experiment", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@runs_dir_option
@lost_after_option
@click.option("--detach", is_flag=True, help="Start the run and return without following it.")
@click.pass_obj
def run(ctx, experiment: Path, runs_dir: Path, lost_after_s: float, detach: bool) -> None:
    """Run EXPERIMENT (experiment.yaml) on the inventory's GPU hosts, instrumented, and collect its bundle.

    Monitors start before training and stop after it on every host; the trainer runs detached, so a lost
    SSH connection never stops it. Ctrl-C asks whether to stop training or detach.
    """
    from labctl.experiment.follow import follow
    from labctl.experiment.run import start_run

    bundle = start_run(experiment, inventory_dir(ctx.inventory_option), runs_dir)
    console.print(f"run started: {bundle}")
    if detach:
        console.print(f"follow it with: labctl attach {bundle}")
        return
    if follow(bundle, console, lost_after_s=lost_after_s) == "detached":
        return
    _finish(bundle)


@click.command("attach")
@click.argument("run_ref", metavar="RUN")
@runs_dir_option
@lost_after_option
def attach(run_ref: str, runs_dir: Path, lost_after_s: float) -> None:
    """Follow RUN (a run directory or id) again until it ends, then collect its bundle."""
    from labctl.experiment.follow import follow
    from labctl.experiment.runs import find_run

    bundle = find_run(run_ref, runs_dir)
    if follow(bundle, console, lost_after_s=lost_after_s) == "detached":
        return
    _finish(bundle)


@click.command("collect")
@click.argument("run_ref", metavar="RUN")
@runs_dir_option
@click.option("--force", is_flag=True, help="Collect what exists even while training still runs.")
def collect_cmd(run_ref: str, runs_dir: Path, force: bool) -> None:
    """Fetch every raw file of RUN into its bundle (resumable, sha256-verified) and write manifest.json."""
    from labctl.experiment.collect import collect, require_complete
    from labctl.experiment.runs import find_run

    bundle = find_run(run_ref, runs_dir)
    manifest = collect(bundle, force=force)
    console.print(
        f"{len(manifest['files'])} files in {bundle}; state {manifest['state']}; "
        f"{'complete' if manifest['complete'] else 'INCOMPLETE'}"
    )
    require_complete(bundle, manifest)


COMMANDS = [run, attach, collect_cmd]
