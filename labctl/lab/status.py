"""`labctl status`: the ledger against what the cluster shows now (drift), and what provision would
change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from labctl.config.lab import LabConfig
from labctl.errors import ConfigError, LabctlError
from labctl.lab import hosts_phase
from labctl.ontap import export_policy, flexgroup, interfaces, nfs
from labctl.ontap.session import Ontap, ontap_session
from labctl.state import Ledger, read_ledger


def _check(ontap: Ontap, entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """('ok' | 'drift' | 'missing' | 'foreign', {field: {recorded, now}}) for one ledger entry ('foreign':
    what the ledger recorded is gone and something that is not labctl's is in its place)."""
    kind, name = entry.get("kind"), entry.get("name", "")
    want = entry.get("desired", {})
    if kind == "nfs_service":
        now = nfs.current(ontap)
        if now is None:
            return "missing", {}
        drift = {k: {"recorded": v, "now": now.get(k)} for k, v in want.items() if now.get(k) != v}
        return ("drift" if drift else "ok"), drift
    if kind == "export_policy":
        return ("ok" if export_policy.find_policy(ontap, name) is not None else "missing"), {}
    if kind == "export_rule":
        policy_id = export_policy.find_policy(ontap, name)
        rules = export_policy.rules(ontap, policy_id) if policy_id is not None else {}
        # labctl's rule is known by its content: another rule at the recorded index is someone else's
        if export_policy.owned_index(rules, entry) is not None:
            return "ok", {}
        return ("foreign" if export_policy.foreign_at_index(rules, entry) is not None else "missing"), {}
    if kind == "interface":
        lif = interfaces.lifs(ontap).get(name)
        if lif is None:
            return "missing", {}
        drift = {k: {"recorded": v, "now": getattr(lif, k)} for k, v in want.items() if getattr(lif, k) != v}
        return ("drift" if drift else "ok"), drift
    if kind == "volume":
        vol = flexgroup.find_volume(ontap, name)
        if vol is None or (entry.get("uuid") and vol.uuid != entry["uuid"]):
            return "missing", {}
        drift = {}
        if "size" in want and abs(vol.size - want["size"]) > flexgroup.SIZE_TOLERANCE * want["size"]:
            drift["size"] = {"recorded": want["size"], "now": vol.size}
        if "junction" in want and want["junction"] != vol.junction:
            drift["junction"] = {"recorded": want["junction"], "now": vol.junction}
        return ("drift" if drift else "ok"), drift
    return "unknown", {}


def lab_status(
    cfg: LabConfig, state_dir: Path, *, console: Console, only: str | None = None
) -> dict[str, Any]:
    """A JSON-ready report: cluster, each ledger object with its drift, pending changes, hosts
    (`only="storage"` / `"hosts"` limits it to one side)."""
    data = read_ledger(state_dir)
    report: dict[str, Any] = {
        "inventory": str(cfg.inventory),
        "state_dir": str(state_dir),
        "lab_id": data.get("lab_id"),
        "meta": data.get("meta", {}),
        "objects": [],
    }
    report["hosts"] = None
    if only != "hosts":
        _storage_status(cfg, state_dir, data, report, console)
    if only != "storage":
        report["hosts"] = hosts_phase.host_status(
            inventory=cfg.inventory, state_dir=state_dir, extra_vars=_host_vars(cfg, data), console=console
        )
    return report


def _host_vars(cfg: LabConfig, data: dict[str, Any]) -> dict[str, Any]:
    return {"labctl_nfs_server": cfg.nfs_server or data.get("meta", {}).get("nfs_server")}


def _storage_status(
    cfg: LabConfig, state_dir: Path, data: dict[str, Any], report: dict[str, Any], console: Console
) -> None:
    with ontap_session(cfg, console) as ontap:
        info = ontap.cluster
        report["cluster"] = {"name": info.name, "version": info.version, "svm": cfg.svm} if info else None
        for key, entry in sorted(data.get("objects", {}).items()):
            status, drift = _check(ontap, entry)
            report["objects"].append(
                {
                    "key": key,
                    "kind": entry.get("kind"),
                    "name": entry.get("name"),
                    "ledger_state": entry.get("state"),
                    "created": entry.get("created", False),
                    "status": status,
                    "drift": drift,
                }
            )
        report["pending"] = _pending(cfg, state_dir, ontap)


def _pending(cfg: LabConfig, state_dir: Path, ontap: Ontap) -> list[dict[str, Any]] | dict[str, str]:
    """What `provision` would change now (the plan), or why it cannot say."""
    try:
        with Ledger.open(state_dir) as ledger:
            changes = [
                nfs.plan_nfs(ontap),
                *export_policy.plan_export(ontap, ledger)[0],
                *interfaces.plan_interfaces(ontap, ledger)[0],
                flexgroup.plan_flexgroup(ontap, ledger)[0],
            ]
    except ConfigError:
        raise
    except LabctlError as exc:
        return {"error": exc.message}
    return [c.to_json() for c in changes if c.mutates]
