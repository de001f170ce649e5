"""`labctl teardown`: undo exactly what the ledger records, in reverse order (hosts, FlexGroup, export
rule/policy, LIFs, NFS settings), and report what is left."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from labctl.config.lab import LabConfig
from labctl.errors import ConfigError, LabctlError
from labctl.lab import hosts_phase
from labctl.ontap import export_policy, flexgroup, flexgroup_check, interfaces, nfs
from labctl.ontap.changes import Change
from labctl.ontap.session import Ontap, ontap_session
from labctl.state import Ledger, lab_lock, read_ledger


@dataclass
class TeardownResult:
    """What teardown did and what it could not do."""

    changes: list[Change] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    recovery_queue: list[str] | None = None
    hosts: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing labctl owns is left behind and nothing was refused."""
        return not self.leftovers


def _names(ledger: Ledger, kind: str) -> list[str]:
    return sorted({e["name"] for e in ledger.entries().values() if e.get("kind") == kind})


def _step(result: TeardownResult, what: str, fn: Any) -> None:
    """Run one removal; a failure becomes a leftover so the other steps still run (credentials abort)."""
    try:
        out = fn()
    except ConfigError:
        raise
    except LabctlError as exc:
        result.leftovers.append(f"{what}: {exc.message}")
        return
    result.changes += out if isinstance(out, list) else [out]


def teardown_storage(cfg: LabConfig, state_dir: Path, *, console: Console) -> TeardownResult:
    """Remove the ONTAP objects the ledger owns and restore the NFS settings it changed."""
    result = TeardownResult()
    with Ledger.open(state_dir) as ledger, ontap_session(cfg, console) as ontap:
        volumes = sorted(set(_names(ledger, "volume")) | {cfg.flexgroup.name})
        for name in volumes:
            _step(result, f"FlexGroup {name}", lambda n=name: flexgroup.remove_flexgroup(ontap, ledger, n))
        policies = _names(ledger, "export_policy") + _names(ledger, "export_rule")
        for name in sorted(set(policies)):
            _step(
                result, f"export policy {name}", lambda n=name: export_policy.remove_export(ontap, ledger, n)
            )
        _step(result, "data LIFs", lambda: interfaces.remove_interfaces(ontap, ledger))
        _step(result, "NFS settings", lambda: nfs.remove_nfs(ontap, ledger))
        _report_leftovers(ontap, ledger, result)
    return result


def _report_leftovers(ontap: Ontap, ledger: Ledger, result: TeardownResult) -> None:
    for change in result.changes:
        if change.action == flexgroup.REFUSED:
            result.leftovers.append(f"{change.kind} {change.name}: refused: {change.note}")
    for key, entry in sorted(ledger.entries().items()):
        text = f"{entry.get('kind')} {entry.get('name')} ({key}) is still recorded in the ledger"
        if not any(entry.get("name", "?") in item for item in result.leftovers):
            result.leftovers.append(text)
    result.recovery_queue = flexgroup_check.recovery_queue(ontap)


def teardown(
    cfg: LabConfig,
    state_dir: Path,
    *,
    only: str | None,
    console: Console,
    force: bool = False,
    remove_install: bool = False,
) -> TeardownResult:
    """The whole `labctl teardown`: hosts first, then storage (either alone with `only`).

    `force` lets the hosts unmount lazily when the mount is busy; `remove_install` also removes LLM Studio."""
    hosts_result = None
    notes: list[str] = []
    if only != "storage":
        # a host that fails raises a HostError, and then the storage is left alone (hosts may still use it;
        # `--only storage` goes ahead anyway)
        server = cfg.nfs_server or read_ledger(state_dir).get("meta", {}).get("nfs_server")
        with lab_lock(state_dir):
            hosts_result = hosts_phase.teardown_hosts(
                inventory=cfg.inventory,
                state_dir=state_dir,
                extra_vars={"labctl_nfs_server": server},
                console=console,
                force=force,
                remove_install=remove_install,
            )
    for name, host in ((hosts_result or {}).get("hosts") or {}).items():
        notes += [f"{name}: {note}" for note in host.get("notes") or []]
    result = teardown_storage(cfg, state_dir, console=console) if only != "hosts" else TeardownResult()
    result.hosts = hosts_result
    result.notes += notes
    return result
