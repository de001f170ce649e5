"""The FlexGroup: aggregates × constituents per aggregate, sized, junctioned, exported, tagged as labctl's in
its comment; verified after every provision; deleted only when the ledger owns exactly that volume."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from netapp_ontap.resources import Aggregate, Volume

from labctl.config.keys import format_size
from labctl.errors import OntapError
from labctl.ontap.changes import ABSENT, CREATE, DELETE, KEEP, MODIFY, UNCHANGED, Change
from labctl.ontap.interfaces import nodes
from labctl.ontap.rest import changed
from labctl.ontap.session import Ontap
from labctl.state import INTENT, Ledger

KIND = "FlexGroup"
REFUSED = "refused"
CREATE_RUNNING = "13107405"  # "Another volume is currently being created with the name …"
VOLUME_FIELDS = "uuid,name,style,size,comment,state,aggregates,nas.path,nas.export_policy.name,svm"
SIZE_TOLERANCE = 0.01  # ONTAP rounds constituent sizes; a 1 % difference is not drift


@dataclass(frozen=True)
class VolumeState:
    """The FlexGroup as labctl compares it."""

    uuid: str
    comment: str
    size: int
    junction: str
    policy: str
    style: str


Plan = tuple[Change, VolumeState | None]  # plan_flexgroup's answer: the change, the volume as it was


def ledger_key(svm: str, name: str) -> str:
    """Ledger key of a volume."""
    return f"volume:{svm}/{name}"


def owner_tag(lab_id: str) -> str:
    """The comment labctl writes on volumes it creates (the ownership marker on the array)."""
    return f"managed by labctl (lab {lab_id}); removed by `labctl teardown`"


def find_volume(ontap: Ontap, name: str | None = None) -> VolumeState | None:
    """The named volume of the SVM, or None."""
    svm, name = ontap.cfg.svm, name or ontap.cfg.flexgroup.name
    found = ontap.call(
        f"look up volume {name}",
        lambda: list(Volume.get_collection(name=name, fields=VOLUME_FIELDS, **{"svm.name": svm})),
    )
    if not found:
        return None
    d = found[0].to_dict()
    nas = d.get("nas", {})
    return VolumeState(
        uuid=str(d["uuid"]),
        comment=str(d.get("comment") or ""),
        size=int(d.get("size") or 0),
        junction=str(nas.get("path") or ""),
        policy=str(nas.get("export_policy", {}).get("name", "")),
        style=str(d.get("style") or ""),
    )


def all_aggregates(ontap: Ontap) -> list[Any]:
    """Every aggregate of the cluster (read once per session)."""
    return ontap.memo(
        "aggregates",
        lambda: ontap.call(
            "list the aggregates",
            lambda: list(Aggregate.get_collection(fields="name,node,state,space.block_storage.available")),
        ),
    )


def aggregates(ontap: Ontap) -> list[str]:
    """The configured aggregates, else one per node (the online one with the most free space).

    Raises:
        OntapError: a node has no usable data aggregate.
    """
    if ontap.cfg.flexgroup.aggregates:
        return list(ontap.cfg.flexgroup.aggregates)
    found = all_aggregates(ontap)
    best: dict[str, tuple[int, str]] = {}
    for aggr in found:
        d = aggr.to_dict()
        if d.get("state", "online") != "online":
            continue
        node = d.get("node", {}).get("name", "?")
        free = int(d.get("space", {}).get("block_storage", {}).get("available") or 0)
        if node not in best or free > best[node][0]:
            best[node] = (free, str(d["name"]))
    missing = [n for n in nodes(ontap) if n not in best]
    if missing:
        raise OntapError(
            f"node(s) {', '.join(missing)} have no online data aggregate for the FlexGroup",
            where=ontap.cfg.where("labctl_flexgroup_aggregates"),
            fix="create an aggregate on each node, or list labctl_flexgroup_aggregates explicitly",
        )
    return [best[n][1] for n in sorted(best)]


def _owned(ontap: Ontap, ledger: Ledger, vol: VolumeState, name: str) -> bool:
    """The ledger recorded this very volume, or it carries this lab's tag (a create whose answer or
    record was lost: the tag holds the ledger's random lab id, so only this lab can have written it)."""
    entry = ledger.get(ledger_key(ontap.cfg.svm, name)) or {}
    if entry.get("uuid"):
        return entry["uuid"] == vol.uuid
    return owner_tag(ledger.lab_id) in vol.comment


def _refusal(ontap: Ontap, vol: VolumeState, name: str) -> OntapError:
    return OntapError(
        f"volume {name} exists in SVM {ontap.cfg.svm} (uuid {vol.uuid}) but labctl did not create "
        "it: labctl never modifies or deletes volumes it does not own",
        where=ontap.cfg.where("labctl_flexgroup_name"),
        fix="choose another labctl_flexgroup_name, or remove that volume yourself if it is unused",
    )


def plan_flexgroup(ontap: Ontap, ledger: Ledger) -> tuple[Change, VolumeState | None]:
    """What `ensure_flexgroup` would do.

    Raises:
        OntapError: a same-named volume that labctl does not own exists, or its layout cannot be changed.
    """
    fg, policy = ontap.cfg.flexgroup, ontap.cfg.export.policy
    vol = find_volume(ontap)
    if vol is None:
        aggrs = aggregates(ontap)
        return Change(
            KIND,
            fg.name,
            CREATE,
            {
                "size": (None, format_size(fg.size)),
                "aggregates": (None, aggrs),
                "constituents": (None, len(aggrs) * fg.constituents_per_aggregate),
                "junction": (None, fg.junction),
                "export_policy": (None, policy),
            },
        ), None
    if not _owned(ontap, ledger, vol, fg.name):
        raise _refusal(ontap, vol, fg.name)
    layout = Counter(p["aggregate"] for p in constituents(ontap))
    want = {a: fg.constituents_per_aggregate for a in aggregates(ontap)}
    if dict(layout) != want:
        return Change(
            KIND,
            fg.name,
            REFUSED,
            {"layout": (_layout(layout), _layout(want))},
            note="a FlexGroup's layout cannot change in place: `labctl teardown`, then provision",
        ), vol
    fields: dict[str, tuple[Any, Any]] = {}
    if abs(vol.size - fg.size) > SIZE_TOLERANCE * fg.size:
        fields["size"] = (format_size(vol.size), format_size(fg.size))
    if vol.junction != fg.junction:
        fields["junction"] = (vol.junction or None, fg.junction)
    if vol.policy != policy:
        fields["export_policy"] = (vol.policy or None, policy)
    return Change(KIND, fg.name, MODIFY if fields else UNCHANGED, fields), vol


def layout_error(change: Change) -> OntapError:
    """The error for a FlexGroup whose layout differs from the configuration (it cannot change in place)."""
    return OntapError(
        f"FlexGroup {change.name} does not match the configuration: {change.describe()}",
        fix="run `labctl teardown` and provision again (or restore the previous layout settings)",
    )


def _layout(per_aggregate: dict[str, int]) -> str:
    return ", ".join(f"{a}×{n}" for a, n in sorted(per_aggregate.items())) or "none"


def ensure_flexgroup(ontap: Ontap, ledger: Ledger, planned: Plan | None = None) -> Plan:
    """Create the FlexGroup (job followed with progress) or fix its size, junction and policy; `planned` is
    this command's `plan_flexgroup` answer if it has one (nothing changed the volume since). Returns the
    change and the volume as it is now (None after a modification: read it again)."""
    fg, svm = ontap.cfg.flexgroup, ontap.cfg.svm
    key = ledger_key(svm, fg.name)
    change, vol = planned or plan_flexgroup(ontap, ledger)
    if change.action == REFUSED:
        raise layout_error(change)
    if change.action == CREATE:
        aggrs = aggregates(ontap)
        body = {
            "name": fg.name,
            "svm": {"name": svm},
            "style": "flexgroup",
            "aggregates": [{"name": a} for a in aggrs],
            "constituents_per_aggregate": fg.constituents_per_aggregate,
            "size": fg.size,
            "guarantee": {"type": "none"},
            "comment": owner_tag(ledger.lab_id),
            "nas": {
                "path": fg.junction,
                "security_style": "unix",
                "export_policy": {"name": ontap.cfg.export.policy},
            },
        }
        ledger.intent(
            key,
            kind="volume",
            action="create",
            name=fg.name,
            desired={
                "size": fg.size,
                "aggregates": aggrs,
                "junction": fg.junction,
                "constituents_per_aggregate": fg.constituents_per_aggregate,
            },
        )
        what = f"create FlexGroup {fg.name} ({len(aggrs) * fg.constituents_per_aggregate} constituents)"
        with ontap.progress(what) as tick:
            try:
                response = ontap.call(
                    what, lambda: Volume.from_dict(body).post(poll=False), recover=lambda: find_volume(ontap)
                )
                ontap.wait_job(response, what, tick)
            except OntapError as exc:
                if exc.code != CREATE_RUNNING:
                    raise
                _await_volume(ontap, tick)  # an interrupted run's create is still running: wait for it
        vol = find_volume(ontap)
        if vol is None:
            raise OntapError(
                f"{what}: the job succeeded but the volume is not listed",
                fix="check `volume show` on the cluster, then rerun provision",
            )
        ledger.done(key, uuid=vol.uuid)
    elif change.action == MODIFY and vol is not None:
        patch: dict[str, Any] = {}
        if "size" in change.fields:
            patch["size"] = fg.size
        if "junction" in change.fields or "export_policy" in change.fields:
            patch["nas"] = {"path": fg.junction, "export_policy": {"name": ontap.cfg.export.policy}}
        ledger.intent(
            key,
            kind="volume",
            action="modify",
            name=fg.name,
            uuid=vol.uuid,
            desired={"size": fg.size, "junction": fg.junction},
        )
        what = f"update FlexGroup {fg.name}"
        with ontap.progress(what) as tick:
            response = ontap.call(what, lambda: changed(Volume(uuid=vol.uuid), **patch).patch(poll=False))
            ontap.wait_job(response, what, tick)
        ledger.done(key)
        return change, None
    elif vol is not None and (ledger.get(key) or {}).get("state") == INTENT:
        ledger.done(key, uuid=vol.uuid)  # an interrupted run's create had landed (adopted by its tag)
    return change, vol


def _await_volume(ontap: Ontap, tick: Any) -> None:
    """Wait (up to labctl_ontap_job_timeout) for a create started by an earlier run to finish."""
    deadline = time.monotonic() + ontap.cfg.ontap.job_timeout
    while find_volume(ontap) is None:
        tick("creating (started by an earlier run)")
        if time.monotonic() >= deadline:
            raise OntapError(
                f"FlexGroup {ontap.cfg.flexgroup.name} is still being created by an earlier run",
                where="labctl_ontap_job_timeout",
                fix="rerun provision when that job has ended",
            )
        time.sleep(1.0)


def constituents(ontap: Ontap) -> list[dict[str, Any]]:
    """The FlexGroup's constituents: name, aggregate, size."""
    fg, svm = ontap.cfg.flexgroup, ontap.cfg.svm
    found = ontap.call(
        f"list the constituents of {fg.name}",
        lambda: list(
            Volume.get_collection(
                is_constituent=True,
                fields="name,aggregates,size,state",
                **{"flexgroup.name": fg.name, "svm.name": svm},
            )
        ),
    )
    out = []
    for rec in found:
        d = rec.to_dict()
        aggrs = d.get("aggregates") or [{}]
        out.append(
            {
                "name": d.get("name"),
                "aggregate": aggrs[0].get("name"),
                "size": int(d.get("size") or 0),
                "state": d.get("state"),
            }
        )
    return out


def remove_flexgroup(ontap: Ontap, ledger: Ledger, name: str | None = None, *, plan: bool = False) -> Change:
    """Unmount and delete the FlexGroup `name` if (and only if) the ledger owns exactly this volume."""
    svm, name = ontap.cfg.svm, name or ontap.cfg.flexgroup.name
    key = ledger_key(svm, name)
    entry = ledger.get(key)
    vol = find_volume(ontap, name)
    if vol is None:
        note = ""
        if entry is not None and entry.get("state") == INTENT and entry.get("action") == "create":
            note = "an interrupted create may still finish on ONTAP; if the volume appears, rerun teardown"
        if entry is not None and not plan:
            ledger.forget(key)
        return Change(KIND, name, ABSENT, note=note)
    if not _owned(ontap, ledger, vol, name):
        # someone else's volume of that name: never touched, and not a leftover of labctl's (labctl's own,
        # if the ledger recorded one, is gone: its record goes too)
        if entry is not None and not plan:
            ledger.forget(key)
        return Change(KIND, name, KEEP, note=f"uuid {vol.uuid}: not created by labctl, left alone")
    if plan:
        return Change(KIND, name, DELETE, {"junction": (vol.junction or None, None)} if vol.junction else {})
    ledger.update(key, state="removing", uuid=vol.uuid)
    if vol.junction:
        what = f"unmount FlexGroup {name} from {vol.junction}"
        with ontap.progress(what) as tick:
            response = ontap.call(
                what, lambda: changed(Volume(uuid=vol.uuid), nas={"path": ""}).patch(poll=False)
            )
            ontap.wait_job(response, what, tick)
    what = f"delete FlexGroup {name}"
    with ontap.progress(what) as tick:
        response = ontap.call(
            what,
            lambda: Volume(uuid=vol.uuid).delete(poll=False),
            recover=lambda: find_volume(ontap, name) is None,
            gone_ok=True,
        )
        if response not in (True, None):
            ontap.wait_job(response, what, tick)
    ledger.forget(key)
    return Change(KIND, name, DELETE)
