"""Every check provision can make before it changes the cluster, so that a provision that must fail
fails before its first POST/PATCH: a same-named volume labctl does not own, a layout that cannot change,
aggregates that do not exist, a junction path in use (or without its parent), too many constituents."""

from __future__ import annotations

from netapp_ontap.resources import Volume

from labctl.config.keys import MAX_CONSTITUENTS
from labctl.errors import OntapError
from labctl.ontap import flexgroup
from labctl.ontap.session import Ontap
from labctl.state import Ledger


def check_before_changes(ontap: Ontap, ledger: Ledger, *, plan: bool = False) -> flexgroup.Plan:
    """Raise the error provision would meet later, before anything is changed (with `plan`, a layout that
    cannot change is shown in the plan as refused rather than raised). Returns the FlexGroup's plan, which
    provision's later steps reuse (they do not touch the volume).

    Raises:
        OntapError: naming the inventory key to fix.
    """
    change, vol = flexgroup.plan_flexgroup(ontap, ledger)  # refuses a same-named volume labctl does not own
    if change.action == flexgroup.REFUSED and not plan:
        raise flexgroup.layout_error(change)
    if vol is None:  # else labctl's FlexGroup exists: its aggregates and junction were checked when made
        _check_aggregates(ontap)
        _check_junction(ontap)
    return change, vol


def _check_aggregates(ontap: Ontap) -> None:
    cfg = ontap.cfg
    fg = cfg.flexgroup
    if fg.aggregates:
        known = {str(a.name) for a in flexgroup.all_aggregates(ontap)}
        missing = [a for a in fg.aggregates if a not in known]
        if missing:
            raise OntapError(
                f"aggregate(s) {', '.join(missing)} do not exist on the cluster",
                where=cfg.where("labctl_flexgroup_aggregates"),
                fix="list existing aggregates (`storage aggregate show`), or leave the key out (one per "
                "node)",
            )
    aggrs = flexgroup.aggregates(ontap)  # raises when a node has no usable aggregate
    total = len(aggrs) * fg.constituents_per_aggregate
    if total > MAX_CONSTITUENTS:
        raise OntapError(
            f"{len(aggrs)} aggregates × {fg.constituents_per_aggregate} = {total} constituents; a FlexGroup "
            f"has at most {MAX_CONSTITUENTS}",
            where=cfg.where("labctl_flexgroup_constituents_per_aggregate"),
            fix=f"lower it to at most {MAX_CONSTITUENTS // len(aggrs)}",
        )


def _volumes_at(ontap: Ontap, path: str) -> list[str]:
    found = ontap.call(
        f"look up the volume at junction {path}",
        lambda: list(Volume.get_collection(fields="name", **{"nas.path": path, "svm.name": ontap.cfg.svm})),
    )
    return [str(v.name) for v in found]


def _check_junction(ontap: Ontap) -> None:
    cfg = ontap.cfg
    junction = cfg.flexgroup.junction
    where = cfg.where("labctl_flexgroup_junction")
    users = _volumes_at(ontap, junction)
    if users:
        raise OntapError(
            f"junction path {junction} is already used by volume {users[0]} in SVM {cfg.svm}",
            where=where,
            fix="choose a free junction path such as /fg_llm",
        )
    parent = junction.rsplit("/", 1)[0] or "/"
    if parent != junction and not _volumes_at(ontap, parent):
        raise OntapError(
            f"junction path {junction}: no volume is mounted at its parent {parent} in SVM {cfg.svm}",
            where=where,
            fix="mount the FlexGroup under an existing junction, e.g. /fg_llm",
        )
