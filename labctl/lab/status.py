"""`labctl status`: the ledger against what the cluster shows now (drift), and what provision would
change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from labctl.config.lab import LabConfig
from labctl.errors import ConfigError, LabctlError
from labctl.lab import hosts_phase_module
from labctl.ontap import export_policy, flexgroup, interfaces, nfs
from labctl.ontap.session import Ontap, ontap_session
from labctl.state import Ledger, read_ledger


def _check(ontap: Ontap, entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """('ok' | 'drift' | 'missing', {field: {recorded, now}}) for one ledger entry."""
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
        rules = export_policy._rules(ontap, policy_id) if policy_id is not None else {}
        rule = rules.get(int(entry.get("index", -1)))
        if rule is None:
            return "missing", {}
        drift = {k: {"recorded": v, "now": rule.get(k)} for k, v in want.items() if rule.get(k) != v}
        return ("drift" if drift else "ok"), drift
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
        now = {"size": vol.size, "junction": vol.junction}
        drift = {k: {"recorded": want[k], "now": v} for k, v in now.items() if k in want and want[k] != v}
        return ("drift" if drift else "ok"), drift
    return "unknown", {}


def lab_status(cfg: LabConfig, state_dir: Path, *, console: Console) -> dict[str, Any]:
    """A JSON-ready report: cluster, each ledger object with its drift, pending changes, hosts."""
    data = read_ledger(state_dir)
    report: dict[str, Any] = {
        "inventory": str(cfg.inventory),
        "state_dir": str(state_dir),
        "lab_id": data.get("lab_id"),
        "meta": data.get("meta", {}),
        "objects": [],
    }
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
    module = hosts_phase_module()
    if module is not None:
        # The agreed call: hosts_phase.host_status(inventory=Path, state_dir=Path, console=Console)
        # -> a JSON-able summary.
        report["hosts"] = module.host_status(inventory=cfg.inventory, state_dir=state_dir, console=console)
    else:
        report["hosts"] = None
    return report


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
