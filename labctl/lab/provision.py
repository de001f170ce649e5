"""`labctl provision`: the storage phase (NFS service → export policy → data LIFs → FlexGroup → verify),
then the hosts phase. With `plan=True` it reads only and reports what it would change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from labctl.config.lab import LabConfig
from labctl.errors import LabctlError
from labctl.lab import hosts_phase
from labctl.ontap import export_policy, flexgroup, flexgroup_check, interfaces, nfs, preflight
from labctl.ontap.changes import Change
from labctl.ontap.session import ontap_session
from labctl.state import Ledger, lab_lock, read_ledger


@dataclass
class ProvisionResult:
    """What provision found or did."""

    changes: list[Change] = field(default_factory=list)
    verified: dict[str, Any] | None = None
    nfs_server: str | None = None
    hosts: Any = None
    notes: list[str] = field(default_factory=list)


def provision_storage(cfg: LabConfig, state_dir: Path, *, plan: bool, console: Console) -> ProvisionResult:
    """Ensure (or, with `plan`, only compare) every ONTAP object, then verify the FlexGroup.

    Raises:
        LabctlError: the cluster is unsupported, a REST call fails, or the result does not verify.
    """
    result = ProvisionResult()
    with Ledger.open(state_dir) as ledger, ontap_session(cfg, console) as ontap:
        planned = preflight.check_before_changes(ontap, ledger, plan=plan)  # a provision that must fail
        # changes nothing; its FlexGroup plan is reused: the steps before the FlexGroup's do not touch it
        if plan:
            result.changes.append(nfs.plan_nfs(ontap))
            result.changes += export_policy.plan_export(ontap, ledger)[0]
            lif_changes, addresses = interfaces.plan_interfaces(ontap, ledger)
            result.changes += lif_changes
            result.changes.append(planned[0])
        else:
            result.changes.append(nfs.ensure_nfs(ontap, ledger))
            result.changes += export_policy.ensure_export(ontap, ledger)
            lif_changes, addresses = interfaces.ensure_interfaces(ontap, ledger)
            result.changes += lif_changes
            change, vol = flexgroup.ensure_flexgroup(ontap, ledger, planned)
            result.changes.append(change)
            result.verified = flexgroup_check.verify_flexgroup(ontap, vol)
        result.nfs_server = cfg.nfs_server or (addresses[0] if addresses else None)
        if not plan and result.nfs_server != ledger.meta.get("nfs_server"):
            ledger.set_meta(nfs_server=result.nfs_server, data_addresses=addresses)
    return result


def nfs_server_for_hosts(cfg: LabConfig, state_dir: Path, console: Console) -> str:
    """The address the hosts mount from: labctl_nfs_server, else the one provision recorded, else asked.

    Raises:
        LabctlError: none can be found.
    """
    if cfg.nfs_server:
        return cfg.nfs_server
    recorded = read_ledger(state_dir).get("meta", {}).get("nfs_server")
    if recorded:
        return str(recorded)
    with Ledger.open(state_dir) as ledger, ontap_session(cfg, console) as ontap:
        addresses = interfaces.plan_interfaces(ontap, ledger)[1]
    if not addresses:
        raise LabctlError(
            "no data LIF address to mount from",
            where=cfg.where("labctl_nfs_server"),
            fix="run `labctl provision --only storage` first or set labctl_nfs_server",
        )
    return addresses[0]


def provision_hosts(
    cfg: LabConfig, state_dir: Path, nfs_server: str | None, *, plan: bool, console: Console
) -> Any:
    """Hand over to the hosts phase: Ansible on the GPU hosts (mount, verify, LLM Studio). extra_vars carries
    labctl_nfs_server, the data LIF address the hosts mount from."""
    return hosts_phase.provision_hosts(
        inventory=cfg.inventory,
        state_dir=state_dir,
        extra_vars={"labctl_nfs_server": nfs_server},
        plan=plan,
        console=console,
    )


def provision(
    cfg: LabConfig,
    state_dir: Path,
    *,
    only: str | None,
    plan: bool,
    console: Console,
    on_storage: Callable[[ProvisionResult], None] | None = None,
) -> ProvisionResult:
    """The whole `labctl provision`: storage, then hosts (either alone with `only`). `on_storage` sees the
    storage result before the hosts phase starts (to show it first)."""
    if only == "hosts":
        result = ProvisionResult(nfs_server=nfs_server_for_hosts(cfg, state_dir, console))
    else:
        result = provision_storage(cfg, state_dir, plan=plan, console=console)
        if on_storage is not None:
            on_storage(result)
    if only != "storage":
        with lab_lock(state_dir):  # as the storage phase: two provisions never stack mounts on a host
            result.hosts = provision_hosts(cfg, state_dir, result.nfs_server, plan=plan, console=console)
    return result
