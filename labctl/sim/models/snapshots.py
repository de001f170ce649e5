"""Snapshots (real copies of the volume's directory, restorable) and qtrees (real directories in a volume)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from labctl.sim.exceptions import (
    Duplicate,
    EntryNotFound,
    FieldNotSettable,
    OntapApiError,
    UnexpectedArgument,
)
from labctl.sim.models.base import Record, link, public
from labctl.sim.models.storage import StorageMixin
from labctl.sim.query import as_int, ref_name

SNAPSHOT_FIELDS = {"name", "comment", "expiry_time", "snapmirror_label", "volume", "svm"}
QTREE_FIELDS = {"name", "volume", "svm", "security_style", "unix_permissions", "export_policy", "user",
                "group"}


def _copy_tree(source: Path, target: Path) -> None:
    """Replace `target` with a copy of `source` (an absent source gives an empty directory)."""
    shutil.rmtree(target, ignore_errors=True)
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True)
    else:
        target.mkdir(parents=True, exist_ok=True)


class SnapshotMixin(StorageMixin):
    """Snapshots and qtrees of volumes; every change runs as a job, as on ONTAP."""

    def snapshot_dir(self, snapshot: Record) -> Path:
        """Where a snapshot's copy of the volume lives (outside every volume directory)."""
        return self.data_dir / ".snapshots" / snapshot["volume"]["uuid"] / snapshot["uuid"]

    def forget_volume(self, volume: Record) -> None:
        """Drop a deleted volume's snapshots (and their copies) and qtrees."""
        snapshots = self.state["snapshots"]
        for key in [k for k, s in snapshots.items() if s["volume"]["uuid"] == volume["uuid"]]:
            del self.state["snapshots"][key]
        for key in [k for k, q in self.state["qtrees"].items() if q["volume"]["uuid"] == volume["uuid"]]:
            del self.state["qtrees"][key]
        shutil.rmtree(self.data_dir / ".snapshots" / volume["uuid"], ignore_errors=True)

    def patch_volume(self, vol_uuid: str, body: dict[str, Any]) -> str:
        """A volume PATCH; `restore_to` (from `?restore_to.snapshot.name=`) restores the volume from a
        snapshot (its own job)."""
        if "restore_to" not in body:
            return super().patch_volume(vol_uuid, body)
        rest = {k: v for k, v in body.items() if k != "restore_to"}
        job = self.restore_volume(vol_uuid, body["restore_to"])
        return super().patch_volume(vol_uuid, rest) if rest else job

    # snapshots --------------------------------------------------------------------------------------------
    def snapshots_of(self, vol_uuid: str) -> list[Record]:
        """The volume's snapshots, oldest first (404 for an unknown volume)."""
        self.find_volume(vol_uuid)
        return [s for s in self.state["snapshots"].values() if s["volume"]["uuid"] == vol_uuid]

    def find_snapshot(self, vol_uuid: str, snap_uuid: str) -> Record:
        """A snapshot by volume and uuid; raises EntryNotFound."""
        snapshot = self.state["snapshots"].get(snap_uuid)
        if snapshot is None or snapshot["volume"]["uuid"] != vol_uuid:
            raise EntryNotFound("uuid")
        return snapshot

    def _snapshot_named(self, vol_uuid: str, name: str) -> Record | None:
        return next((s for s in self.snapshots_of(vol_uuid) if s["name"] == name), None)

    @staticmethod
    def _check_fields(body: dict[str, Any], allowed: set[str]) -> None:
        unknown = set(body) - allowed
        if unknown:
            raise UnexpectedArgument(sorted(unknown)[0])

    def create_snapshot(self, vol_uuid: str, body: dict[str, Any]) -> tuple[str, str]:
        """POST …/snapshots: queue a job copying the volume; returns (job uuid, Location)."""
        self._check_fields(body, SNAPSHOT_FIELDS)
        volume = self.find_volume(vol_uuid)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise OntapApiError("Missing value for field \"name\".", code="2", target="name")
        if self._snapshot_named(vol_uuid, name):
            raise Duplicate(f"Snapshot copy \"{name}\" of volume \"{volume['name']}\" on Vserver "
                            f"\"{volume['svm']['name']}\" already exists.", code="1638407", target="name")
        snap_uuid = self.new_uuid("snapshot", f"{vol_uuid}/{name}")
        record: Record = {"uuid": snap_uuid, "name": name, "volume": self.ref(volume),
                          "svm": dict(volume["svm"]), "create_time": self.now(), "state": "valid",
                          "comment": body.get("comment", ""),
                          "_links": link(f"/api/storage/volumes/{vol_uuid}/snapshots/{snap_uuid}")}
        for key in ("expiry_time", "snapmirror_label"):
            if key in body:
                record[key] = body[key]

        def action() -> None:
            _copy_tree(self.volume_dir(volume), self.snapshot_dir(record))
            record["size"] = 0
            self.state["snapshots"][snap_uuid] = record

        job = self.submit_job(f"POST /api/storage/volumes/{vol_uuid}/snapshots/?name={name}", action,
                              svm=self.svm_ref(self.svm_by_uuid(volume["svm"]["uuid"]) or volume["svm"]))
        return job, record["_links"]["self"]["href"]

    def patch_snapshot(self, vol_uuid: str, snap_uuid: str, body: dict[str, Any]) -> str:
        """PATCH …/snapshots/{uuid}: rename, comment, expiry, label (a job)."""
        snapshot = self.find_snapshot(vol_uuid, snap_uuid)
        for key in body:
            if key in ("volume", "svm"):
                raise FieldNotSettable(key)
        self._check_fields(body, SNAPSHOT_FIELDS)
        new_name = body.get("name")
        if new_name and new_name != snapshot["name"] and self._snapshot_named(vol_uuid, new_name):
            raise Duplicate(f"Snapshot copy \"{new_name}\" already exists.", code="1638407", target="name")
        return self.submit_job(f"PATCH /api/storage/volumes/{vol_uuid}/snapshots/{snap_uuid}",
                               lambda: snapshot.update(body))

    def delete_snapshot(self, vol_uuid: str, snap_uuid: str) -> str:
        """DELETE …/snapshots/{uuid} (a job removing the copy)."""
        snapshot = self.find_snapshot(vol_uuid, snap_uuid)

        def action() -> None:
            self.state["snapshots"].pop(snap_uuid, None)
            shutil.rmtree(self.snapshot_dir(snapshot), ignore_errors=True)

        return self.submit_job(f"DELETE /api/storage/volumes/{vol_uuid}/snapshots/{snap_uuid}", action)

    def restore_volume(self, vol_uuid: str, restore_to: Any) -> str:
        """PATCH volume `restore_to.snapshot`: a job putting the volume's files back as they were."""
        volume = self.find_volume(vol_uuid)
        ref = restore_to.get("snapshot") if isinstance(restore_to, dict) else None
        uid = ref.get("uuid") if isinstance(ref, dict) else None
        name = ref_name(ref)
        snapshot = next((s for s in self.snapshots_of(vol_uuid)
                         if (uid and s["uuid"] == uid) or (name and s["name"] == name)), None)
        if snapshot is None:
            raise EntryNotFound("restore_to.snapshot.name")

        def action() -> None:
            _copy_tree(self.snapshot_dir(snapshot), self.volume_dir(volume))
            newer = [s for s in self.snapshots_of(vol_uuid) if s["create_time"] > snapshot["create_time"]]
            for later in newer:  # ONTAP's volume snapshot restore deletes the newer snapshots
                self.state["snapshots"].pop(later["uuid"], None)
                shutil.rmtree(self.snapshot_dir(later), ignore_errors=True)

        return self.submit_job(f"PATCH /api/storage/volumes/{vol_uuid}", action)

    # qtrees -----------------------------------------------------------------------------------------------
    def render_qtree(self, qtree: Record) -> Record:
        """The qtree as REST shows it, its path under the volume's junction."""
        out = public(qtree)
        volume = self.state["volumes"].get(qtree["volume"]["uuid"], {})
        junction = volume.get("nas", {}).get("path")
        if junction:
            out["path"] = f"{junction.rstrip('/')}/{qtree['name']}"
        return out

    def find_qtree(self, vol_uuid: str, qtree_id: str) -> Record:
        """A qtree by volume uuid and id; raises EntryNotFound."""
        qtree = self.state["qtrees"].get(f"{vol_uuid}/{qtree_id}")
        if qtree is None:
            raise EntryNotFound("id")
        return qtree

    def _qtree_settings(self, svm: Record, body: dict[str, Any], qtree: Record | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "security_style" in body:
            out["security_style"] = body["security_style"]
        if "unix_permissions" in body:
            out["unix_permissions"] = as_int(body["unix_permissions"], "unix_permissions")
        if "export_policy" in body:
            out["export_policy"] = self._export_policy_ref(svm, body["export_policy"])
        for key in ("user", "group"):
            if key in body:
                out[key] = {"name": ref_name(body[key]) or ""}
        return out

    def create_qtree(self, body: dict[str, Any]) -> tuple[str, str]:
        """POST /storage/qtrees: a job making the directory in the volume; returns (job, Location)."""
        self._check_fields(body, QTREE_FIELDS)
        svm = self.svm_from_body(body)
        volume = self.svm_volume(svm, body.get("volume"))
        name = body.get("name")
        if not isinstance(name, str) or not name or "/" in name:
            raise OntapApiError("Missing value for field \"name\".", code="2", target="name")
        taken = [q for q in self.state["qtrees"].values() if q["volume"]["uuid"] == volume["uuid"]]
        if any(q["name"] == name for q in taken):
            raise Duplicate(f"Qtree \"{name}\" already exists.", code="5242955", target="name")
        qtree_id = max((q["id"] for q in taken), default=0) + 1
        record: Record = {"id": qtree_id, "name": name, "volume": self.ref(volume), "svm": self.ref(svm),
                          "security_style": volume["nas"].get("security_style", "unix"),
                          "unix_permissions": 755, "export_policy": dict(volume["nas"]["export_policy"]),
                          "user": {"name": "root"}, "group": {"name": "root"},
                          "_links": link(f"/api/storage/qtrees/{volume['uuid']}/{qtree_id}")}
        record.update(self._qtree_settings(svm, body, None))

        def action() -> None:
            self.state["qtrees"][f"{volume['uuid']}/{qtree_id}"] = record
            if volume["nas"].get("path"):
                (self.volume_dir(volume) / name).mkdir(parents=True, exist_ok=True)

        job = self.submit_job(f"POST /api/storage/qtrees/{volume['uuid']}/{qtree_id}", action,
                              svm=self.svm_ref(svm))
        return job, record["_links"]["self"]["href"]

    def patch_qtree(self, vol_uuid: str, qtree_id: str, body: dict[str, Any]) -> str:
        """PATCH /storage/qtrees/{volume.uuid}/{id} (a job)."""
        qtree = self.find_qtree(vol_uuid, qtree_id)
        for key in body:
            if key in ("volume", "svm", "name"):
                raise FieldNotSettable(key)
        self._check_fields(body, QTREE_FIELDS)
        svm = self.svm_by_uuid(qtree["svm"]["uuid"]) or {}
        settings = self._qtree_settings(svm, body, qtree)
        return self.submit_job(f"PATCH /api/storage/qtrees/{vol_uuid}/{qtree_id}",
                               lambda: qtree.update(settings))

    def delete_qtree(self, vol_uuid: str, qtree_id: str) -> str:
        """DELETE /storage/qtrees/{volume.uuid}/{id}: a job removing the directory and its files."""
        qtree = self.find_qtree(vol_uuid, qtree_id)
        volume = self.state["volumes"][vol_uuid]

        def action() -> None:
            self.state["qtrees"].pop(f"{vol_uuid}/{qtree_id}", None)
            shutil.rmtree(self.volume_dir(volume) / qtree["name"], ignore_errors=True)

        return self.submit_job(f"DELETE /api/storage/qtrees/{vol_uuid}/{qtree_id}", action)
