"""`labctl prechecks`: can labctl work on every GPU host? One table per host.

Checks SSH, become, OS family, kernel, NFS client, GPUs, bpftrace and time sync.
"""

from __future__ import annotations

import json

import click
from rich.console import Console

from labctl import paths


@click.command("prechecks")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def prechecks(ctx: click.Context, output: str) -> None:
    """Check every GPU host of the inventory before provisioning (read-only)."""
    from labctl.lab.hosts_phase import HostsPhaseError
    from labctl.lab.hosts_phase import prechecks as run_prechecks

    inventory = paths.inventory_dir(ctx.obj.inventory_option)
    if not inventory.exists():
        raise click.UsageError(f"inventory {inventory} does not exist (use -i DIR)")
    state_dir = paths.private_dir(paths.state_dir(inventory))
    console = Console(stderr=output == "json")
    try:
        summary = run_prechecks(inventory, state_dir, console=console)
    except HostsPhaseError as exc:
        if output == "json":
            click.echo(json.dumps(exc.summary, indent=1, default=str))
        raise
    if output == "json":
        click.echo(json.dumps(summary, indent=1, default=str))
    else:
        console.print(f"all {len(summary['hosts'])} host(s) passed the prechecks")


COMMANDS = [prechecks]
