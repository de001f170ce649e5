"""Data LIFs: pNFS needs a local path to every constituent, so every node needs a data LIF in the SVM.
Existing data LIFs are reused; `labctl_data_lifs` entries are created (and later removed) by labctl."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netapp_ontap.resources import IpInterface, Node

from labctl.config.keys import LifSpec
from labctl.errors import OntapError
from labctl.ontap.changes import ABSENT, CREATE, DELETE, MODIFY, UNCHANGED, Change
from labctl.ontap.rest import changed
from labctl.ontap.session import Ontap
from labctl.state import Ledger

KIND = "data LIF"
LIF_FIELDS = "name,uuid,ip,location,service_policy,services,enabled"


@dataclass(frozen=True)
class Lif:
    """A LIF as labctl sees it."""

    name: str
    uuid: str | None
    address: str
    node: str
    data: bool


def ledger_key(svm: str, name: str) -> str:
    """Ledger key of a LIF."""
    return f"interface:{svm}/{name}"


def nodes(ontap: Ontap) -> list[str]:
    """The cluster's node names, sorted."""
    found = ontap.memo(
        "nodes",
        lambda: ontap.call("list the cluster nodes", lambda: list(Node.get_collection(fields="name"))),
    )
    return sorted(str(n.name) for n in found)


def _lif(record: Any) -> Lif:
    d = record.to_dict()
    loc = d.get("location", {})
    node = (loc.get("home_node") or loc.get("node") or loc.get("home_port", {}).get("node") or {}).get(
        "name", ""
    )
    services = d.get("services")
    policy = d.get("service_policy", {}).get("name", "")
    data = ("data_nfs" in services) if services else policy.startswith("default-data") or not policy
    return Lif(
        str(d.get("name")), d.get("uuid"), str(d.get("ip", {}).get("address", "")), str(node), bool(data)
    )


def lifs(ontap: Ontap) -> dict[str, Lif]:
    """The SVM's IP interfaces by name."""
    svm = ontap.cfg.svm
    found = ontap.call(
        f"list the interfaces of SVM {svm}",
        lambda: list(IpInterface.get_collection(fields=LIF_FIELDS, **{"svm.name": svm})),
    )
    return {lif.name: lif for lif in map(_lif, found)}


def plan_interfaces(ontap: Ontap, ledger: Ledger) -> tuple[list[Change], list[str]]:
    """Changes per LIF and the data addresses per node (first node first), or an error naming the gap.

    Raises:
        OntapError: a node has no data LIF and none is configured for it, or a configured name clashes.
    """
    svm = ontap.cfg.svm
    have = lifs(ontap)
    changes: list[Change] = []
    by_node: dict[str, list[str]] = {}
    for spec in ontap.cfg.data_lifs or []:
        lif = have.get(spec.name)
        if lif is None:
            changes.append(
                Change(KIND, spec.name, CREATE, {"address": (None, spec.address), "node": (None, spec.node)})
            )
            by_node.setdefault(spec.node, []).append(spec.address)
            continue
        owned = ledger.get(ledger_key(svm, spec.name)) is not None
        fields = {
            k: (o, n)
            for k, o, n in (("address", lif.address, spec.address), ("node", lif.node, spec.node))
            if o != n
        }
        if fields and not owned:
            raise OntapError(
                f"LIF {spec.name} exists in SVM {svm} with other settings and labctl did not create it",
                where=ontap.cfg.where("labctl_data_lifs"),
                fix="give the labctl_data_lifs entry another name, or match the existing LIF",
            )
        if "node" in fields:
            raise OntapError(
                f"LIF {spec.name} is homed on {lif.node}, not {spec.node}",
                where=ontap.cfg.where("labctl_data_lifs"),
                fix="run teardown first to move it, or keep the node as it is",
            )
        changes.append(Change(KIND, spec.name, MODIFY if fields else UNCHANGED, fields))
        by_node.setdefault(spec.node, []).append(spec.address)
    configured = {s.name for s in ontap.cfg.data_lifs or []}
    for lif in have.values():
        if lif.data and lif.name not in configured and lif.address:
            by_node.setdefault(lif.node, []).append(lif.address)
            changes.append(Change(KIND, lif.name, UNCHANGED, note=f"existing, on {lif.node}"))
    missing = [n for n in nodes(ontap) if n not in by_node]
    if missing:
        raise OntapError(
            f"node(s) {', '.join(missing)} have no data LIF in SVM {svm}: pNFS needs a local path "
            "to every constituent",
            where=ontap.cfg.where("labctl_data_lifs"),
            fix="add a labctl_data_lifs entry (name, node, address) for each such node",
        )
    addresses = [a for n in sorted(by_node) for a in by_node[n]]
    return changes, addresses


def ensure_interfaces(ontap: Ontap, ledger: Ledger) -> tuple[list[Change], list[str]]:
    """Create or fix the configured data LIFs; returns the changes and the data addresses."""
    changes, addresses = plan_interfaces(ontap, ledger)
    specs = {s.name: s for s in ontap.cfg.data_lifs or []}
    for change in changes:
        spec = specs.get(change.name)
        if spec is None or change.action not in (CREATE, MODIFY):
            continue
        key = ledger_key(ontap.cfg.svm, spec.name)
        if change.action == CREATE:
            ledger.intent(
                key,
                kind="interface",
                action="create",
                name=spec.name,
                desired={"address": spec.address, "node": spec.node},
            )
            ontap.call(
                f"create data LIF {spec.name}",
                lambda s=spec: IpInterface.from_dict(_body(ontap, s)).post(poll=True),
                recover=lambda s=spec: s.name in lifs(ontap),
            )
        else:
            uuid = lifs(ontap)[spec.name].uuid
            ledger.intent(
                key, kind="interface", action="modify", name=spec.name, desired={"address": spec.address}
            )
            ontap.call(
                f"change the address of LIF {spec.name}",
                lambda s=spec, u=uuid: changed(
                    IpInterface(uuid=u), ip={"address": s.address, "netmask": s.netmask}
                ).patch(poll=True),
            )
        ledger.done(key, uuid=lifs(ontap)[spec.name].uuid)
    return changes, addresses


def _body(ontap: Ontap, spec: LifSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "svm": {"name": ontap.cfg.svm},
        "ip": {"address": spec.address, "netmask": spec.netmask},
        "location": {"home_port": {"name": spec.home_port, "node": {"name": spec.node}}},
        "service_policy": {"name": spec.service_policy},
        "enabled": True,
    }


def remove_interfaces(ontap: Ontap, ledger: Ledger, *, plan: bool = False) -> list[Change]:
    """Delete the LIFs labctl created (by uuid); LIFs it only reused stay."""
    out: list[Change] = []
    have = {lif.uuid: lif for lif in lifs(ontap).values()}
    for key, entry in sorted(ledger.entries().items()):
        if entry.get("kind") != "interface":
            continue
        name, uuid = entry["name"], entry.get("uuid")
        if not entry.get("created"):
            if not plan:
                ledger.forget(key)
            continue
        if uuid is None:
            uuid = next((u for u, lif in have.items() if lif.name == name), None)
        if uuid not in have:
            out.append(Change(KIND, name, ABSENT))
        else:
            out.append(Change(KIND, name, DELETE))
            if not plan:
                ledger.update(key, state="removing")
                ontap.call(
                    f"delete LIF {name}", lambda u=uuid: IpInterface(uuid=u).delete(poll=True), gone_ok=True
                )
        if not plan:
            ledger.forget(key)
    return out
