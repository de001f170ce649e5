"""The GPU-host half of `labctl provision | teardown | status` and `labctl prechecks`.

provision: prechecks.yml → mount.yml (mount + verify the effective options) → llmstudio.yml, each host
continuing only while it succeeds; one failing host never hides the others' results. The three run as the
plays of provision.yml, one ansible-playbook run (one start-up, one SSH connection per host); each play is a
step of the summary. Each playbook run's events stay under STATE_DIR/runs/. A summary table per host ends
every phase; a failure raises `HostsPhaseError` (a HostError carrying the JSON summary) after the summary
is shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from labctl.config.keys import var_or_default
from labctl.errors import HostError
from labctl.hosts.runner import PlaybookRun, inventory_hosts, run_playbook

PROVISION_STEPS = (("prechecks", "prechecks.yml"), ("mount", "mount.yml"), ("llmstudio", "llmstudio.yml"))
# imports the PROVISION_STEPS' playbooks, in that order: its n-th play is the n-th step
PROVISION_PLAYBOOK = "provision.yml"


class HostsPhaseError(HostError):
    """One or more GPU hosts failed; `summary` holds every host's result (the others' too)."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message, fix="fix the named hosts and run the command again (it is idempotent)")
        self.summary = summary


def _hosts(inventory: Path) -> dict[str, dict[str, Any]]:
    hosts = inventory_hosts(inventory)
    if not hosts:
        raise HostError(
            "the inventory has no host in group gpu_hosts",
            where=str(inventory),
            fix="list the GPU hosts under gpu_hosts in the inventory",
        )
    return hosts


def _address(hostvars: dict[str, Any], name: str) -> str:
    addr = hostvars.get("ansible_host", name)
    port = hostvars.get("ansible_port")
    return f"{addr}:{port}" if port and int(port) != 22 else str(addr)


def _size(value: Any) -> str:
    if isinstance(value, int) and value % 1024 == 0:
        return f"{value // 1048576}M" if value % 1048576 == 0 else f"{value // 1024}K"
    return str(value)


def describe_mount(effective: dict[str, Any] | None) -> str:
    """One line: vers=4.1 rsize=1M wsize=1M nconnect=16 (16 xprt) pnfs=LAYOUT_NFSV4_1_FILES"""
    if not effective:
        return ""
    return (f"vers={effective.get('vers')} rsize={_size(effective.get('rsize'))} "
            f"wsize={_size(effective.get('wsize'))} nconnect={effective.get('nconnect')} "
            f"({effective.get('transports')} xprt) pnfs={effective.get('pnfs')}")


def release_notes(release: dict[str, Any]) -> list[str]:
    """What teardown left alone or stopped on one host (labctl_stop_users' result), one line each."""
    notes = [
        f"{path} holds {what}, which labctl did not mount: left alone"
        for path, what in sorted((release.get("foreign") or {}).items())
    ]
    notes += [f"stopped labctl run {run}" for run in release.get("stopped_runs") or []]
    others = release.get("others") or []
    if others and release.get("stopped") is not None and not release.get("failed"):
        notes.append(
            "left running (the mount was unmounted lazily under them): "
            + ", ".join(f"pid {o['pid']} ({str(o['cmd'])[:60]})" for o in others)
        )
    return notes


def _summarize(
    phase: str, hostvars: dict[str, dict[str, Any]], runs: list[PlaybookRun], steps: tuple[str, ...]
) -> dict[str, Any]:
    hosts: dict[str, Any] = {}
    for name, hv in hostvars.items():
        entry: dict[str, Any] = {
            "address": _address(hv, name),
            "status": "ok",
            "changed": 0,
            "steps": {},
            "error": None,
        }
        for step, run in zip(steps, runs, strict=False):
            hr = run.hosts.get(name)
            if hr is None:
                entry["steps"][step] = "not run"
                continue
            entry["steps"][step] = hr.status
            entry["changed"] += hr.changed
            if "mount" in hr.data and hr.data["mount"].get("effective"):
                entry["mount"] = hr.data["mount"]["effective"]
                entry["mount_problems"] = hr.data["mount"].get("problems", [])
            if "prechecks" in hr.data:
                entry["prechecks"] = hr.data["prechecks"].get("checks", {})
            if "release" in hr.data:
                entry["notes"] = release_notes(hr.data["release"])
            if hr.status in ("failed", "unreachable") and entry["error"] is None:
                entry["status"] = hr.status
                entry["error"] = hr.message
        if entry["status"] == "ok" and entry["changed"]:
            entry["status"] = "changed"
        hosts[name] = entry
    failed = [n for n, e in hosts.items() if e["status"] in ("failed", "unreachable")]
    return {
        "phase": phase,
        "hosts": hosts,
        "changed": sum(e["changed"] for e in hosts.values()),
        "failed": failed,
        "runs": list(dict.fromkeys(r.private_data_dir for r in runs)),
    }


def _print_summary(console: Console, summary: dict[str, Any], steps: tuple[str, ...]) -> None:
    table = Table(title=f"GPU hosts: {summary['phase']}", title_justify="left")
    for col in ("host", "address", *steps, "changed", "details"):
        table.add_column(col, overflow="fold")
    for name, e in summary["hosts"].items():
        cells = []
        for step in steps:
            status = e["steps"].get(step, "not run")
            style = {"failed": "red", "unreachable": "red", "changed": "yellow", "ok": "green"}.get(status)
            cells.append(f"[{style}]{status}[/]" if style else status)
        detail = e["error"] or "; ".join(e.get("notes") or []) or describe_mount(e.get("mount"))
        table.add_row(name, e["address"], *cells, str(e["changed"]), detail)
    console.print(table)
    console.print(
        f"events: one directory per playbook run under "
        f"{Path(summary['runs'][0]).parent if summary['runs'] else '-'}",
        soft_wrap=True,
    )


def _raise_if_failed(summary: dict[str, Any]) -> dict[str, Any]:
    if not summary["failed"]:
        return summary
    lines = [
        f"{n} ({summary['hosts'][n]['address']}): {summary['hosts'][n]['error']}" for n in summary["failed"]
    ]
    total = len(summary["hosts"])
    raise HostsPhaseError(
        f"{len(summary['failed'])} of {total} GPU host(s) failed in {summary['phase']}:\n  "
        + "\n  ".join(lines),
        summary,
    )


def _run_steps(
    phase: str,
    steps: tuple[tuple[str, str], ...],
    inventory: Path,
    state_dir: Path,
    extra_vars: dict[str, Any],
    console: Console,
) -> dict[str, Any]:
    hostvars = _hosts(inventory)
    alive = list(hostvars)
    runs: list[PlaybookRun] = []
    for step, playbook in steps:
        run = run_playbook(
            playbook,
            inventory,
            state_dir,
            extra_vars,
            phase=f"{phase}-{step}",
            limit=alive,
            console=console,
            hosts=list(hostvars),
        )
        runs.append(run)
        alive = [n for n in alive if run.hosts.get(n) is not None and run.hosts[n].succeeded]
        console.print(f"{step}: {len(alive)} of {len(hostvars)} host(s) ok", style="dim")
    summary = _summarize(phase, hostvars, runs, tuple(s for s, _ in steps))
    _print_summary(console, summary, tuple(s for s, _ in steps))
    return summary


def _run_plays(
    phase: str,
    playbook: str,
    steps: tuple[str, ...],
    inventory: Path,
    state_dir: Path,
    extra_vars: dict[str, Any],
    console: Console,
) -> dict[str, Any]:
    """One ansible-playbook run whose plays are `steps` (in order); Ansible drops a failed host from the later
    plays, as _run_steps does between playbooks."""
    hostvars = _hosts(inventory)
    run = run_playbook(playbook, inventory, state_dir, extra_vars, phase=f"{phase}-hosts", console=console,
                       hosts=list(hostvars))
    runs = [run.play_run(i, f"{phase}-{step}") for i, step in enumerate(steps)]
    alive = list(hostvars)
    for step, play in zip(steps, runs, strict=True):
        alive = [n for n in alive if play.hosts.get(n) is not None and play.hosts[n].succeeded]
        console.print(f"{step}: {len(alive)} of {len(hostvars)} host(s) ok", style="dim")
    summary = _summarize(phase, hostvars, runs, steps)
    _print_summary(console, summary, steps)
    return summary


def _clean(extra_vars: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (extra_vars or {}).items() if v is not None}


def provision_hosts(
    inventory: Path,
    state_dir: Path,
    extra_vars: dict[str, Any] | None = None,
    *,
    plan: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Prechecks, mount + verification, LLM Studio + data set on every GPU host.

    `extra_vars` (at least `labctl_nfs_server`) override the inventory. With `plan`, nothing is touched:
    returns what each host would get. Raises HostsPhaseError (after the summary) when a host fails.
    """
    console = console or Console(stderr=True)
    extra = _clean(extra_vars)
    if plan:
        return _plan(inventory, extra, console)
    steps = tuple(step for step, _ in PROVISION_STEPS)
    summary = _run_plays("provision", PROVISION_PLAYBOOK, steps, Path(inventory), Path(state_dir), extra,
                         console)
    return _raise_if_failed(summary)


def _plan(inventory: Path, extra: dict[str, Any], console: Console) -> dict[str, Any]:
    hostvars = _hosts(Path(inventory))
    hosts = {}
    table = Table(title="GPU hosts: plan", title_justify="left")
    for col in ("host", "address", "would do"):
        table.add_column(col, overflow="fold")
    for name, hv in hostvars.items():
        v = {**hv, **extra}

        def var(key: str, v: dict[str, Any] = v) -> Any:
            return var_or_default(v, key)

        server = v.get("labctl_nfs_server") or "<first data LIF>"
        actions = [
            f"prechecks (SSH, become, OS family, kernel ≥ {var('labctl_prechecks_min_kernel')}, NFS client, "
            "nvidia-smi, bpftrace, time sync)",
            f"mount {server}:{var('labctl_flexgroup_junction')} on {var('labctl_mount_path')} with "
            f"{var('labctl_mount_options')}" + (" (+ /etc/fstab)" if var("labctl_mount_fstab") else ""),
            "verify vers, granted rsize/wsize, nconnect transports and pNFS layout",
            f"LLM Studio {var('labctl_llmstudio_version')} into {var('labctl_llmstudio_dir')}, "
            "data set on the FlexGroup",
        ]
        hosts[name] = {"address": _address(hv, name), "actions": actions}
        table.add_row(name, hosts[name]["address"], "\n".join(actions))
    console.print(table)
    return {"phase": "plan", "hosts": hosts, "changed": 0, "failed": [], "runs": []}


def teardown_hosts(
    inventory: Path,
    state_dir: Path,
    extra_vars: dict[str, Any] | None = None,
    *,
    console: Console | None = None,
    force: bool = False,
    remove_install: bool = False,
    plan: bool = False,
) -> dict[str, Any]:
    """Stop leftovers, unmount (lazily only with `force`), remove the fstab line, optionally the install.

    Idempotent. Raises HostsPhaseError (after the summary) when a host fails.
    """
    console = console or Console(stderr=True)
    extra = _clean(extra_vars)
    if force:  # only when asked: the inventory may also set these keys
        extra["labctl_teardown_force"] = True
    if remove_install:
        extra["labctl_teardown_remove_install"] = True
    if plan:
        hostvars = _hosts(Path(inventory))
        return {
            "phase": "plan",
            "changed": 0,
            "failed": [],
            "runs": [],
            "hosts": {
                n: {
                    "address": _address(hv, n),
                    "actions": [
                        "refuse while a labctl run is active or the mount is busy (--force: stop only "
                        "the run's processes, unmount lazily)",
                        f"undo what {var_or_default(hv, 'labctl_host_state_dir')}/host.json records: "
                        "unmount, fstab line, mount point"
                        + (", LLM Studio install" if remove_install else ""),
                    ],
                }
                for n, hv in hostvars.items()
            },
        }
    summary = _run_steps(
        "teardown", (("teardown", "teardown_hosts.yml"),), Path(inventory), Path(state_dir), extra, console
    )
    return _raise_if_failed(summary)


def host_status(
    inventory: Path,
    state_dir: Path,
    extra_vars: dict[str, Any] | None = None,
    *,
    console: Console | None = None,
) -> dict[str, Any]:
    """Each host's reachability, mount (effective options, problems) and LLM Studio checkout. Never raises for
    host problems: they are reported per host."""
    console = console or Console(stderr=True)
    hostvars = _hosts(Path(inventory))
    run = run_playbook(
        "status.yml",
        Path(inventory),
        Path(state_dir),
        _clean(extra_vars),
        phase="status",
        console=console,
        hosts=list(hostvars),
        live=False,
    )
    out: dict[str, Any] = {}
    for name, hv in hostvars.items():
        hr = run.hosts.get(name)
        mount = hr.data.get("mount", {}) if hr else {}
        out[name] = {
            "address": _address(hv, name),
            "reachable": bool(hr) and hr.status != "unreachable",
            "mounted": bool(mount.get("mounted")),
            "effective": mount.get("effective"),
            "problems": mount.get("problems", []),
            "error": hr.message if hr and hr.status in ("failed", "unreachable") else None,
            "mount_path": var_or_default(hv, "labctl_mount_path"),
        }
        llm = hr.data.get("llmstudio", {}) if hr else {}
        out[name]["llmstudio"] = (llm.get("stdout") or "").strip() or None if llm.get("rc") == 0 else None
    return out


def prechecks(
    inventory: Path,
    state_dir: Path,
    extra_vars: dict[str, Any] | None = None,
    *,
    console: Console | None = None,
) -> dict[str, Any]:
    """`labctl prechecks`: a table per host; raises HostsPhaseError when a host fails a check."""
    console = console or Console(stderr=True)
    hostvars = _hosts(Path(inventory))
    run = run_playbook(
        "prechecks.yml",
        Path(inventory),
        Path(state_dir),
        _clean(extra_vars),
        phase="prechecks",
        console=console,
        hosts=list(hostvars),
    )
    for name in hostvars:
        hr = run.hosts.get(name)
        checks = (hr.data.get("prechecks", {}) if hr else {}).get("checks", {})
        table = Table(title=f"{name} ({_address(hostvars[name], name)})", title_justify="left")
        for col in ("check", "result", "value", "detail"):
            table.add_column(col, overflow="fold")
        for check, c in checks.items():
            verdict = "[green]ok[/]" if c["ok"] else "[yellow]warn[/]" if c["warn"] else "[red]FAIL[/]"
            table.add_row(check, verdict, str(c["value"]), c["message"])
        if not checks:
            table.add_row("ssh", "[red]FAIL[/]", "", (hr.message if hr else None) or "no result")
        console.print(table)
    summary = _summarize("prechecks", hostvars, [run], ("prechecks",))
    return _raise_if_failed(summary)
