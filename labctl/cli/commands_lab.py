"""`labctl provision | teardown | status`: parse, call labctl.lab, print. Nothing else lives here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from labctl import paths
from labctl.errors import LabctlError, UsageError
from labctl.redact import RedactingStream, redact

if TYPE_CHECKING:
    from labctl.config.lab import LabConfig
    from labctl.lab.provision import ProvisionResult
    from labctl.ontap.changes import Change

ONLY = click.Choice(["storage", "hosts"])
STYLE = {
    "create": "green",
    "modify": "yellow",
    "delete": "red",
    "restore": "yellow",
    "refused": "bold red",
    "unchanged": "dim",
    "absent": "dim",
    "keep": "dim",
}


def _lab(ctx: click.Context, *, secrets: bool = True) -> tuple[LabConfig, Path]:
    """The validated lab config and its state dir (where the log goes too)."""
    from labctl.cli import set_log_dir
    from labctl.config.lab import load_lab_config

    inventory = paths.inventory_dir(ctx.obj.inventory_option)
    state_dir = paths.state_dir(inventory)
    set_log_dir(state_dir)
    return load_lab_config(inventory, resolve_secrets=secrets), state_dir


def _changes_table(title: str, changes: list[Change]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for col in ("object", "name", "action", "details"):
        table.add_column(col, overflow="fold")
    for c in changes:
        details = "; ".join(f"{k}: {_show(o)} → {_show(n)}" for k, (o, n) in c.fields.items())
        if c.note:
            details = f"{details} ({c.note})" if details else c.note
        table.add_row(c.kind, c.name, f"[{STYLE.get(c.action, '')}]{c.action}[/]", details)
    return table


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


@click.command("provision")
@click.option("--only", type=ONLY, help="Only the ONTAP side (storage) or only the GPU hosts (hosts).")
@click.option("--plan", is_flag=True, help="Show what would be created or changed; change nothing.")
@click.pass_context
def provision(ctx: click.Context, only: str | None, plan: bool) -> None:
    """Make the lab: NFS v4.1 + pNFS, export policy, data LIFs and the FlexGroup, then the GPU hosts."""
    from labctl.lab.provision import provision as run

    cfg, state_dir = _lab(ctx)
    console = Console(file=RedactingStream())

    def show_storage(result: ProvisionResult) -> None:
        console.print(_changes_table("plan (nothing changed)" if plan else "storage", result.changes))
        if result.verified:
            v = result.verified
            spread = ", ".join(f"{a}: {n}" for a, n in sorted(v["per_aggregate"].items()))
            console.print(
                f"verified: {v['name']}: {v['constituents']} constituents ({spread}), "
                f"junction {v['junction']}, export policy {v['policy']}"
            )
        if result.nfs_server:
            console.print(
                f"hosts mount {result.nfs_server}:{cfg.flexgroup.junction} on {cfg.mount.path} "
                f"with {cfg.mount.options}"
            )
        if plan:
            n = sum(c.mutates for c in result.changes)
            console.print(f"{n} change(s) planned" if n else "nothing to change")
            refused = [c for c in result.changes if c.action == "refused"]
            if refused:
                console.print(f"[bold red]{len(refused)} object(s) refused:[/] provision would stop there")

    result = run(cfg, state_dir, only=only, plan=plan, console=console, on_storage=show_storage)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")


@click.command("teardown")
@click.option("--only", type=ONLY, help="Only the ONTAP side (storage) or only the GPU hosts (hosts).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--force", is_flag=True, help="Stop an active run's processes, unmount lazily (never anyone else's)."
)
@click.option("--remove-install", is_flag=True, help="Also remove the LLM Studio install labctl created.")
@click.pass_context
def teardown(ctx: click.Context, only: str | None, yes: bool, force: bool, remove_install: bool) -> None:
    """Undo exactly what labctl did (per its ledger), in reverse order, and report what is left."""
    from labctl.lab.teardown import teardown as run

    cfg, state_dir = _lab(ctx)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("teardown needs confirmation", fix="rerun with --yes (no terminal to ask on)")
        click.confirm(
            f"Tear down the lab of {cfg.inventory} (SVM {cfg.svm} on {cfg.ontap.endpoint})?", abort=True
        )
    console = Console(file=RedactingStream())
    result = run(cfg, state_dir, only=only, console=console, force=force, remove_install=remove_install)
    if result.changes:
        console.print(_changes_table("teardown", result.changes))
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    if only != "hosts":
        console.print("[bold]leftovers:[/] " + ("none" if not result.leftovers else ""))
        for item in result.leftovers:
            console.print(f"  - {item}")
        queue = result.recovery_queue
        console.print(
            "ONTAP volume recovery queue: "
            + (
                "not readable through REST here; check `volume recovery-queue show` (advanced)"
                if queue is None
                else ", ".join(queue)
                if queue
                else "empty"
            )
        )
    if not result.clean:
        raise LabctlError(
            "teardown left objects behind (listed above)",
            fix="fix what each line says, then rerun `labctl teardown --yes`",
        )


@click.command("status")
@click.option("--only", type=ONLY, help="Only the ONTAP side (storage) or only the GPU hosts (hosts).")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def status(ctx: click.Context, only: str | None, output: str) -> None:
    """Compare the ledger with what the cluster shows now (drift), and what provision would change."""
    from labctl.lab.status import lab_status

    cfg, state_dir = _lab(ctx)
    console = Console(file=RedactingStream())
    report = lab_status(cfg, state_dir, console=Console(file=RedactingStream(stderr=True)), only=only)
    if output == "json":
        click.echo(redact(json.dumps(report, indent=2, sort_keys=True, default=str)))
        return
    if only != "hosts":
        _print_storage_status(console, report, state_dir)
    if only != "storage":
        _print_host_status(console, report.get("hosts"))


def _print_storage_status(console: Console, report: dict[str, Any], state_dir: Path) -> None:
    cluster = report.get("cluster") or {}
    console.print(
        f"cluster {cluster.get('name')} (ONTAP {cluster.get('version')}), SVM {cluster.get('svm')}; "
        f"ledger {state_dir}"
    )
    table = Table(show_edge=False, pad_edge=False)
    for col in ("object", "name", "owned", "status", "drift"):
        table.add_column(col, overflow="fold")
    for obj in report["objects"]:
        drift = "; ".join(f"{k}: {_show(d['recorded'])} → {_show(d['now'])}" for k, d in obj["drift"].items())
        style = {"ok": "green", "drift": "yellow", "missing": "red", "foreign": "red"}.get(obj["status"], "")
        owned = "created" if obj["created"] else "changed"
        table.add_row(obj["kind"], obj["name"], owned, f"[{style}]{obj['status']}[/]", drift)
    console.print(table if report["objects"] else "the ledger records nothing: labctl owns nothing here")
    pending = report.get("pending")
    if isinstance(pending, dict):
        console.print(f"pending: cannot plan: {pending.get('error')}")
    elif pending:
        console.print(f"pending: {len(pending)} change(s); `labctl provision --plan` shows them")
    else:
        console.print("pending: nothing (the cluster matches the configuration)")


def _print_host_status(console: Console, hosts: dict[str, Any]) -> None:
    table = Table(title="GPU hosts", title_justify="left", show_edge=False, pad_edge=False)
    for col in ("host", "address", "reachable", "mounted", "problems"):
        table.add_column(col, overflow="fold")
    for name, h in sorted(hosts.items()):
        h = h if isinstance(h, dict) else {}
        problems = "; ".join(str(p) for p in h.get("problems") or []) or (h.get("error") or "")
        table.add_row(
            name,
            str(h.get("address", "")),
            str(h.get("reachable", "?")),
            str(h.get("mounted", "?")),
            problems,
        )
    console.print(table)


COMMANDS: list[click.Command] = [provision, teardown, status]
