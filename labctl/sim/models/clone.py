"""FlexClone volumes: `POST volume` with `clone.is_flexclone`, the clone's files those of its parent at the
snapshot named (or now), `clone.split_initiated` to split it, and parents with clones kept from deletion."""

from __future__ import annotations

import shutil
from typing import Any

from labctl.sim.exceptions import EntryNotFound, FieldNotSettable, InvalidValue, OntapApiError
from labctl.sim.models.base import Record
from labctl.sim.models.snapshots import SnapshotMixin
from labctl.sim.query import as_bool, ref_name

CLONE_POST_FIELDS = {"is_flexclone", "parent_volume", "parent_snapshot", "parent_svm"}


class CloneMixin(SnapshotMixin):
    """FlexClones of FlexVols and FlexGroups."""

    _clone_pending: Record | None = None  # the resolved `clone` of the volume POST being validated

    def clones_of(self, volume: Record) -> list[Record]:
        """The FlexClones whose parent is `volume`."""
        return [v for v in self.state["volumes"].values()
                if v.get("clone", {}).get("parent_volume", {}).get("uuid") == volume["uuid"]]

    def _resolve_clone(self, svm: Record, clone: Any) -> Record:
        if not isinstance(clone, dict):
            raise InvalidValue("clone", clone)
        for key in clone:
            if key not in CLONE_POST_FIELDS:
                raise FieldNotSettable(f"clone.{key}")
        if not as_bool(clone.get("is_flexclone", False), "clone.is_flexclone"):
            raise OntapApiError("\"clone.is_flexclone\" must be true to create a FlexClone volume.",
                                code="262197", target="clone.is_flexclone")
        named = ref_name(clone.get("parent_svm"))
        parent_svm = self.find_svm({"name": named}) if named else svm
        parent = self.svm_volume(parent_svm, clone.get("parent_volume"), target="clone.parent_volume.name")
        out: Record = {"is_flexclone": True, "parent_volume": self.ref(parent),
                       "parent_svm": self.ref(parent_svm)}
        snap = clone.get("parent_snapshot")
        if snap:
            snap_uid = snap.get("uuid") if isinstance(snap, dict) else None
            found = next((s for s in self.state.get("snapshots", {}).values()
                          if s["volume"]["uuid"] == parent["uuid"]
                          and (s["uuid"] == snap_uid or s["name"] == ref_name(snap))), None)
            if found is None:
                raise EntryNotFound("clone.parent_snapshot.name")
            out["parent_snapshot"] = self.ref(found)
        return out

    def create_volume(self, body: dict[str, Any]) -> tuple[str, str]:
        """Volume POST; with `clone` the new volume is a FlexClone laid out as its parent."""
        if "clone" not in body:
            return super().create_volume(body)
        svm = self.svm_from_body(body)
        clone = self._resolve_clone(svm, body["clone"])
        parent = self.state["volumes"][clone["parent_volume"]["uuid"]]
        rest = {k: v for k, v in body.items() if k != "clone"}
        rest.setdefault("size", parent["size"])
        rest.setdefault("guarantee", {"type": parent["guarantee"]["type"]})
        rest.setdefault("style", parent["style"])
        rest.setdefault("aggregates", [{"name": a["name"]} for a in parent["aggregates"]])
        if parent["style"] == "flexgroup":
            rest.setdefault("constituents_per_aggregate", parent.get("constituents_per_aggregate", 1))
        self._clone_pending = clone
        try:
            return super().create_volume(rest)
        finally:
            self._clone_pending = None

    def _new_volume_record(self, svm: Record, name: str, style: str, body: dict[str, Any],
                           nas: dict[str, Any], policy: dict[str, Any], placement: list[Record],
                           size: int) -> Record:
        record = super()._new_volume_record(svm, name, style, body, nas, policy, placement, size)
        if self._clone_pending is not None:
            record["clone"] = dict(self._clone_pending)
        return record

    def _place_volume(self, record: Record, placement: list[Record]) -> None:
        """Create the volume; a FlexClone starts with its parent's files (at the snapshot, if one)."""
        super()._place_volume(record, placement)
        clone = record.get("clone")
        if not clone:
            return
        parent = self.state["volumes"].get(clone["parent_volume"]["uuid"])
        snap = self.state.get("snapshots", {}).get(clone.get("parent_snapshot", {}).get("uuid", ""))
        source = self.snapshot_dir(snap) if snap else self.volume_dir(parent) if parent else None
        target = self.volume_dir(record)
        shutil.rmtree(target, ignore_errors=True)
        if source is not None and source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        else:
            target.mkdir(parents=True, exist_ok=True)

    def render_volume(self, volume: Record) -> Record:
        """The volume with `clone.has_flexclone` on parents."""
        out = super().render_volume(volume)
        if volume["style"] != "flexgroup_constituent" and self.clones_of(volume):
            out.setdefault("clone", {})["has_flexclone"] = True
        return out

    def patch_volume(self, vol_uuid: str, body: dict[str, Any]) -> str:
        """A volume PATCH; `clone.split_initiated: true` splits a FlexClone from its parent (a job)."""
        if "clone" not in body:
            return super().patch_volume(vol_uuid, body)
        volume = self.find_volume(vol_uuid)
        clone = body["clone"] if isinstance(body["clone"], dict) else {}
        for key in clone:
            if key != "split_initiated":
                raise FieldNotSettable(f"clone.{key}")
        if not volume.get("clone", {}).get("is_flexclone"):
            raise OntapApiError(f"Volume \"{volume['name']}\" is not a FlexClone volume.", code="13107376",
                                target="clone.split_initiated")  # code invented: see docs/simulator.md
        split = as_bool(clone.get("split_initiated", False), "clone.split_initiated")
        job = self.submit_job(f"PATCH /api/storage/volumes/{vol_uuid}",
                              lambda: volume.update(clone={"is_flexclone": False}) if split else None)
        rest = {k: v for k, v in body.items() if k != "clone"}
        return super().patch_volume(vol_uuid, rest) if rest else job

    def delete_volume(self, vol_uuid: str) -> str:
        """Volume DELETE; a parent with FlexClones is refused (524615)."""
        volume = self.state["volumes"].get(vol_uuid)
        if volume is not None and self.clones_of(volume):
            raise OntapApiError("Failed to delete volume because it has one or more clones.", code="524615")
        return super().delete_volume(vol_uuid)
