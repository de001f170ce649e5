"""The SVM's NFS service: v4.1, pNFS and the TCP max transfer size, changed only where they differ, with the
prior values recorded so teardown restores them."""

from __future__ import annotations

from typing import Any

from netapp_ontap.resources import NfsService

from labctl.ontap.changes import ABSENT, CREATE, MODIFY, RESTORE, UNCHANGED, Change, diff
from labctl.ontap.rest import changed
from labctl.ontap.session import Ontap
from labctl.state import INTENT, Ledger

KIND = "NFS service"
FIELDS = "enabled,protocol.v41_enabled,protocol.v41_features.pnfs_enabled,transport.tcp_max_transfer_size,svm"


def ledger_key(svm: str) -> str:
    """The ledger key of an SVM's NFS service."""
    return f"nfs_service:{svm}"


def desired(ontap: Ontap) -> dict[str, Any]:
    """The settings labctl wants, as flat REST field names."""
    nfs = ontap.cfg.nfs
    return {
        "enabled": True,
        "protocol.v41_enabled": nfs.v41,
        "protocol.v41_features.pnfs_enabled": nfs.pnfs,
        "transport.tcp_max_transfer_size": nfs.tcp_max_xfer_size,
    }


def current(ontap: Ontap) -> dict[str, Any] | None:
    """The service's settings as flat REST field names, or None when the SVM has no NFS service."""
    svm = ontap.cfg.svm
    found = ontap.call(
        f"read the NFS service of SVM {svm}",
        lambda: list(NfsService.get_collection(fields=FIELDS, **{"svm.name": svm})),
    )
    if not found:
        return None
    d = found[0].to_dict()
    return {
        "enabled": d.get("enabled"),
        "protocol.v41_enabled": d.get("protocol", {}).get("v41_enabled"),
        "protocol.v41_features.pnfs_enabled": d.get("protocol", {})
        .get("v41_features", {})
        .get("pnfs_enabled"),
        "transport.tcp_max_transfer_size": d.get("transport", {}).get("tcp_max_transfer_size"),
    }


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def plan_nfs(ontap: Ontap) -> Change:
    """What `ensure_nfs` would do."""
    now = current(ontap)
    if now is None:
        return Change(KIND, ontap.cfg.svm, CREATE, {k: (None, v) for k, v in desired(ontap).items()})
    changes = diff(now, desired(ontap))
    return Change(KIND, ontap.cfg.svm, MODIFY if changes else UNCHANGED, changes)


def ensure_nfs(ontap: Ontap, ledger: Ledger) -> Change:
    """Create the NFS service or patch the settings that differ, recording prior values first."""
    change = plan_nfs(ontap)
    svm, key = ontap.cfg.svm, ledger_key(ontap.cfg.svm)
    uuid = ontap.cluster.svm_uuid if ontap.cluster else None
    if change.action == CREATE:
        want = desired(ontap)
        ledger.intent(key, kind="nfs_service", action="create", name=svm, desired=want, svm_uuid=uuid)
        body = {"svm": {"name": svm}, **_nest(want)}
        ontap.call(
            f"create the NFS service of SVM {svm}",
            lambda: NfsService.from_dict(body).post(poll=True),
            recover=lambda: current(ontap) is not None,
        )
        ledger.done(key)
    elif change.action == MODIFY:
        prior = {k: old for k, (old, _) in change.fields.items()}
        new = {k: n for k, (_, n) in change.fields.items()}
        ledger.intent(
            key, kind="nfs_service", action="modify", name=svm, prior=prior, desired=new, svm_uuid=uuid
        )
        _patch(ontap, uuid, new, f"change the NFS settings of SVM {svm}")
        ledger.done(key)
    elif (ledger.get(key) or {}).get("state") == INTENT:
        ledger.done(key)  # an interrupted run's change had landed: the cluster shows it
    return change


def _patch(ontap: Ontap, svm_uuid: str | None, values: dict[str, Any], what: str) -> None:
    body = _nest(values)
    ontap.call(what, lambda: changed(NfsService(svm={"uuid": svm_uuid}), **body).patch(poll=True))


def remove_nfs(ontap: Ontap, ledger: Ledger, *, plan: bool = False) -> Change:
    """Restore every setting labctl changed to its recorded prior value (or delete a service it created)."""
    svm, key = ontap.cfg.svm, ledger_key(ontap.cfg.svm)
    entry = ledger.get(key)
    if entry is None:
        return Change(KIND, svm, UNCHANGED, note="labctl changed nothing here")
    now = current(ontap)
    uuid = entry.get("svm_uuid") or (ontap.cluster.svm_uuid if ontap.cluster else None)
    if entry.get("created"):
        if now is None:
            if not plan:
                ledger.forget(key)
            return Change(KIND, svm, ABSENT)
        if not plan:
            ontap.call(
                f"delete the NFS service of SVM {svm}",
                lambda: NfsService.from_dict({"svm": {"uuid": uuid}}).delete(poll=True),
                gone_ok=True,
            )
            ledger.forget(key)
        return Change(KIND, svm, "delete")
    prior = entry.get("prior", {})
    changes = diff(now or {}, prior)
    if changes and not plan:
        ledger.update(key, state="removing")
        _patch(ontap, uuid, prior, f"restore the NFS settings of SVM {svm}")
    if not plan:
        ledger.forget(key)
    return Change(KIND, svm, RESTORE if changes else UNCHANGED, changes)
