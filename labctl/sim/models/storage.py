"""Aggregates (with space accounting) and volumes: FlexVol, FlexGroup and its constituents."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from labctl.sim.exceptions import (
    Duplicate,
    EntryNotFound,
    FieldNotSettable,
    InvalidValue,
    OntapApiError,
    UnexpectedArgument,
)
from labctl.sim.models.base import Record, link, public
from labctl.sim.models.counters import add_counters
from labctl.sim.models.jobs import JobsMixin
from labctl.sim.query import as_int, as_size, deep_merge, ref_name

MIB = 1 << 20
VOLUME_FIELDS = {
    "name", "svm", "aggregates", "constituents_per_aggregate", "constituent_count", "style", "size", "nas",
    "guarantee", "state", "type", "snapshot_policy", "space", "comment", "language", "encryption",
    "efficiency", "tiering", "qos", "_tags", "optimize_aggregates", "use_mirrored_aggregates",
    "granular_data", "autosize", "snaplock", "files", "analytics", "activity_tracking", "application",
    "scheduled_snapshot_naming_scheme", "access_time_enabled", "snapshot_directory_access_enabled",
}
PATCH_READ_ONLY = {"svm", "style", "constituents_per_aggregate", "constituent_count", "aggregates", "type",
                   "uuid", "create_time", "is_svm_root"}
ENUMS = {"state": ("online", "offline", "restricted"), "guarantee.type": ("volume", "none"),
         "nas.security_style": ("unix", "ntfs", "mixed", "unified"), "type": ("rw", "dp"),
         "style": ("flexvol", "flexgroup")}
NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")


def _get(body: dict[str, Any], dotted: str) -> Any:
    node: Any = body
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def split_size(size: int, parts: int) -> list[int]:
    """A FlexGroup's size over its constituents: whole 4 KiB blocks, as even as can be, the remainder on the
    first ones, so that the FlexGroup reports exactly the size asked (reruns compare equal)."""
    if parts <= 1:
        return [size]
    blocks, rest = divmod(size, 4096)
    each, extra = divmod(blocks, parts)
    sizes = [(each + (1 if i < extra else 0)) * 4096 for i in range(parts)]
    sizes[-1] += rest
    return sizes


def mounted_error(volume: Record) -> OntapApiError:
    """524546: a mounted volume cannot go offline (or be deleted)."""
    return OntapApiError(f"Volume \"{volume['name']}\" on SVM \"{volume['svm']['name']}\" must be unmounted "
                         "before being taken offline or restricted.", code="524546")


class StorageMixin(JobsMixin):
    """Aggregate space and the volume lifecycle; every change to a volume runs as a job."""

    _du_cache: dict[str, tuple[float, int]]

    # aggregates -------------------------------------------------------------------------------------------
    def aggregate_used(self, aggr: Record) -> int:
        """Bytes used: the seeded base, the full size of every thick volume (or constituent) on it, and the
        bytes really stored in thin ones (spread evenly over their constituents)."""
        used = aggr["_base_used"]
        for vol in self.state["volumes"].values():
            if vol["style"] == "flexgroup_constituent":
                continue
            members = self.constituents(vol) if vol["style"] == "flexgroup" else [vol]
            here = [m for m in members if any(a["uuid"] == aggr["uuid"] for a in m["aggregates"])]
            if not here:
                continue
            if vol["guarantee"]["type"] == "volume":
                used += sum(m["size"] for m in here)
            else:
                used += self.volume_used(vol) * len(here) // len(members)
        return used

    def volume_used(self, volume: Record) -> int:
        """Bytes stored in the volume's directory (re-measured at most every 0.25 s)."""
        now = time.monotonic()
        cached = self._du_cache.get(volume["uuid"])
        if cached and now - cached[0] < 0.25:
            return cached[1]
        total = 0
        stack = [self.volume_dir(volume)]
        while stack:
            try:
                entries = list(os.scandir(stack.pop()))
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
        self._du_cache[volume["uuid"]] = (now, total)
        return total

    def render_aggregate(self, aggr: Record) -> Record:
        """The aggregate as REST shows it, with live space figures."""
        out = public(aggr)
        size = aggr["_size"]
        used = self.aggregate_used(aggr)
        out["space"] = {"block_storage": {"size": size, "used": used, "available": size - used,
                                          "full_threshold_percent": 98},
                        "efficiency": {"savings": 0, "ratio": 1.0}}
        out["volume-count"] = sum(1 for v in self.state["volumes"].values()
                                  if v["style"] != "flexgroup"
                                  and any(a["uuid"] == aggr["uuid"] for a in v["aggregates"]))
        return add_counters(out, "/api/storage/aggregates", self.now())

    def aggregate_available(self, aggr: Record) -> int:
        """Free bytes in the aggregate."""
        return aggr["_size"] - self.aggregate_used(aggr)

    def add_aggregate(self, name: str, node: Record, size: int, used: int = 0) -> Record:
        """A data aggregate on `node`, `size` bytes, `used` already taken."""
        aggr_uuid = self.new_uuid("aggregate", name)
        aggr = {"uuid": aggr_uuid, "name": name, "node": self.ref(node), "home_node": self.ref(node),
                "state": "online", "snaplock_type": "non_snaplock", "create_time": self.now(),
                "block_storage": {"primary": {"disk_count": 23, "raid_type": "raid_dp", "raid_size": 24,
                                              "disk_class": "solid_state", "disk_type": "ssd"},
                                  "mirror": {"enabled": False, "state": "unmirrored"},
                                  "storage_type": "ssd", "hybrid_cache": {"enabled": False}},
                "data_encryption": {"software_encryption_enabled": False, "drive_protection_enabled": False},
                "_size": size, "_base_used": used, "_links": link(f"/api/storage/aggregates/{aggr_uuid}")}
        self.state["aggregates"][aggr_uuid] = aggr
        return aggr

    # volumes: reading -------------------------------------------------------------------------------------
    def volume_dir(self, volume: Record) -> Path:
        """The volume's real directory: data_dir/<svm>/<volume>."""
        return self.data_dir / volume["svm"]["name"] / volume["name"]

    def find_volume(self, vol_uuid: str, is_constituent: bool = False) -> Record:
        """A volume by uuid; constituents only when `is_constituent` (404 otherwise, as ONTAP)."""
        volume = self.state["volumes"].get(vol_uuid)
        if volume is None or (volume["style"] == "flexgroup_constituent") != is_constituent:
            raise EntryNotFound("uuid")
        return volume

    def constituents(self, volume: Record) -> list[Record]:
        """A FlexGroup's constituents, by name."""
        return sorted((v for v in self.state["volumes"].values()
                       if v.get("flexgroup", {}).get("uuid") == volume["uuid"]), key=lambda v: v["name"])

    @staticmethod
    def volume_defaults(volume: Record) -> Record:
        """What ONTAP shows on every volume unless changed: autosize, efficiency state, atime, snapdir,
        snapshot count, clone, move and analytics state (all-flash nodes enable efficiency at creation)."""
        size = volume["size"]
        return {"autosize": {"mode": "off", "maximum": size * 6 // 5, "minimum": size, "grow_threshold": 85,
                             "shrink_threshold": 50},
                "efficiency": {"state": "enabled", "dedupe": "background",
                               "volume_path": f"/vol/{volume['name']}"},
                "snapshot_count": 0, "access_time_enabled": True,
                "snapshot_directory_access_enabled": True, "clone": {"is_flexclone": False},
                "movement": {}, "analytics": {"state": "off"}}

    def render_volume(self, volume: Record) -> Record:
        """The volume as REST shows it (defaults, space, constituents, counters, no empty junction)."""
        out = deep_merge(self.volume_defaults(volume), public(volume))
        add_counters(out, "/api/storage/volumes", self.now())
        out["snapshot_count"] = sum(1 for s in self.state.get("snapshots", {}).values()
                                    if s["volume"]["uuid"] == volume["uuid"])
        efficiency = out["efficiency"]
        if "state" not in volume.get("efficiency", {}) and efficiency.get("dedupe") == "none" \
                and efficiency.get("compression") == "none":
            efficiency["state"] = "disabled"  # what disabling efficiency (dedupe and compression off) shows
        size = volume["size"]
        used = self.volume_used(volume) if volume["style"] != "flexgroup_constituent" else 0
        space = out.setdefault("space", {})
        space.update(size=size, used=used, available=max(0, size - used),
                     percent_used=int(used * 100 / size) if size else 0)
        if not volume.get("nas", {}).get("path"):
            out.get("nas", {}).pop("path", None)
        if volume["style"] == "flexgroup":
            members = self.constituents(volume)
            share = used // max(1, len(members))
            out["constituent_count"] = len(members)
            out["constituents"] = [
                {"name": m["name"], "aggregates": m["aggregates"][0], "node": m["nodes"][0],
                 "space": {"size": m["size"], "used": share, "available": max(0, m["size"] - share)}}
                for m in members]
        return out

    def forget_volume(self, volume: Record) -> None:
        """Drop what belongs to a deleted volume (snapshots, qtrees: see SnapshotMixin)."""

    # volumes: writing -------------------------------------------------------------------------------------
    def _check_enums(self, body: dict[str, Any]) -> None:
        for dotted, allowed in ENUMS.items():
            value = _get(body, dotted)
            if value is not None and value not in allowed:
                raise InvalidValue(dotted, value)

    def _check_name(self, name: Any, style: str) -> None:
        if not isinstance(name, str) or not name:
            raise OntapApiError("Missing value for field \"name\".", code="2", target="name")
        if len(name) > (197 if style == "flexgroup" else 203):
            raise OntapApiError(f"Volume name \"{name}\" is too long.", code="917886", target="name")
        if not (name[0].isalpha() or name[0] == "_"):
            raise OntapApiError("The first character of the volume name must be a letter or underscore.",
                                code="917887", target="name")
        if not NAME_RE.match(name):
            raise OntapApiError(f"Invalid volume name \"{name}\". A volume name can contain only letters, "
                                "digits and underscores.", code="917888", target="name")

    def _volume_named(self, svm: Record, name: str) -> Record | None:
        return next((v for v in self.state["volumes"].values()
                     if v["svm"]["uuid"] == svm["uuid"] and v["name"] == name), None)

    def _export_policy_ref(self, svm: Record, ref: Any) -> dict[str, Any]:
        for policy in self.state["export_policies"].values():
            if policy["svm"]["uuid"] != svm["uuid"]:
                continue
            if (isinstance(ref, dict) and ref.get("id") is not None and str(ref["id"]) == str(policy["id"])) \
                    or ref_name(ref) == policy["name"]:
                return {"name": policy["name"], "id": policy["id"]}
        raise OntapApiError("Failed to get valid export policy.", code="918271",
                            target="nas.export_policy.name")

    def _check_junction(self, svm: Record, path: Any, volume: Record | None = None) -> None:
        if path == "":
            return
        if not isinstance(path, str) or not path.startswith("/") or "//" in path or \
                (path != "/" and path.endswith("/")):
            raise OntapApiError("\"nas.path\" is invalid.", code="918252", target="nas.path")
        junctions = {v.get("nas", {}).get("path"): v for v in self.state["volumes"].values()
                     if v["svm"]["uuid"] == svm["uuid"] and v is not volume}
        if path in junctions:
            raise OntapApiError(f"\"nas.path\" is invalid. Junction path \"{path}\" is already used by "
                                f"volume \"{junctions[path]['name']}\".", code="918252", target="nas.path")
        parent = path.rsplit("/", 1)[0] or "/"
        if parent not in junctions:
            raise OntapApiError(f"\"nas.path\" is invalid. Parent junction \"{parent}\" does not exist.",
                                code="918252", target="nas.path")

    def _layout(self, body: dict[str, Any], style: str | None) -> tuple[str, list[Record]]:
        """(style, one aggregate per constituent — or the single aggregate of a FlexVol)."""
        aggr_refs = body.get("aggregates")
        per = body.get("constituents_per_aggregate")
        count = body.get("constituent_count")
        if aggr_refs is not None and not isinstance(aggr_refs, list):
            raise InvalidValue("aggregates", aggr_refs)
        aggrs = [self.find_aggregate(ref) for ref in aggr_refs or []]
        if style is None:
            style = "flexgroup" if (len(aggrs) > 1 or per is not None or count is not None) else "flexvol"
        if style == "flexvol":
            if len(aggrs) > 1:
                raise InvalidValue("aggregates", ",".join(a["name"] for a in aggrs))
            if not aggrs:
                aggrs = [max(self.state["aggregates"].values(), key=self.aggregate_available)]
            return style, aggrs
        if not aggrs:  # auto-provisioned: every data aggregate of the cluster
            aggrs = sorted(self.state["aggregates"].values(), key=lambda a: a["name"])
        if count is not None:
            total = as_int(count, "constituent_count")
        else:
            per_n = as_int(per, "constituents_per_aggregate") if per is not None else 4
            if not 1 <= per_n <= 1000:
                raise InvalidValue("constituents_per_aggregate", per)
            total = per_n * len(aggrs)
        if total > 200 * len(aggrs):
            raise OntapApiError("The specified FlexGroup volume layout exceeds the maximum number of volumes "
                                "on node.", code="13107245")
        return style, [aggrs[i % len(aggrs)] for i in range(total)]

    def create_volume(self, body: dict[str, Any]) -> tuple[str, str]:
        """Validate a volume POST and queue its job; returns (job uuid, Location)."""
        unknown = set(body) - VOLUME_FIELDS
        if unknown:
            raise UnexpectedArgument(sorted(unknown)[0])
        svm = self.svm_from_body(body)
        self._check_enums(body)
        style, placement = self._layout(body, body.get("style"))
        name = body.get("name")
        self._check_name(name, style)
        nas = dict(body.get("nas") or {})
        policy = self._export_policy_ref(svm, nas.get("export_policy") or "default")
        path = nas.get("path", "")
        self._check_junction(svm, path)
        if self._volume_named(svm, name):
            raise Duplicate(f"Duplicate volume name {name}.", code="917526", target="name")
        if (svm["uuid"], name) in self._pending_names:
            raise Duplicate(f"Another volume is currently being created with the name \"{name}\" in SVM "
                            f"\"{svm['name']}\".", code="13107405", target="name")
        n = len(placement) if style == "flexgroup" else 1
        size = as_size(body["size"]) if "size" in body else 20 * MIB * n
        minimum = (200 if style == "flexgroup" else 20) * MIB * n
        if size < minimum:
            raise OntapApiError(f"Size \"{size}B\" is too small. Minimum size is \"{minimum}B\".",
                                code="917534", target="size")
        if style == "flexgroup" and size > 20 * (1 << 50):
            raise OntapApiError(f"Request to provision FlexGroup volume \"{name}\" failed because the "
                                "requested size is greater than the maximum size.", code="13107326",
                                target="size")
        if body.get("type", "rw") == "dp" and path:
            raise OntapApiError("\"nas.path\" is invalid for a data protection volume.", code="918252",
                                target="nas.path")
        record = self._new_volume_record(svm, name, style, body, nas, policy, placement, size)
        self._pending_names.add((svm["uuid"], name))

        job = self.submit_job(f"POST /api/storage/volumes/{record['uuid']}",
                              lambda: self._place_volume(record, placement), svm=self.svm_ref(svm),
                              cleanup=lambda: self._pending_names.discard((svm["uuid"], name)))
        return job, f"/api/storage/volumes/?name={name}"

    def _new_volume_record(self, svm: Record, name: str, style: str, body: dict[str, Any],
                           nas: dict[str, Any], policy: dict[str, Any], placement: list[Record],
                           size: int) -> Record:
        vol_uuid = self.new_uuid("volume", f"{svm['name']}/{name}")
        distinct = list({a["uuid"]: a for a in placement}.values())
        record: Record = {
            "uuid": vol_uuid, "name": name, "svm": self.ref(svm), "style": style,
            "type": body.get("type", "rw"),
            "state": body.get("state", "online"), "size": size, "comment": body.get("comment", ""),
            "language": body.get("language", "c.utf_8"), "create_time": self.now(), "is_svm_root": False,
            "aggregates": [self.ref(a) for a in distinct],
            "nas": {"path": nas.get("path", ""), "export_policy": policy,
                    "security_style": nas.get("security_style", "unix"),
                    "uid": as_int(nas.get("uid", 0), "nas.uid"), "gid": as_int(nas.get("gid", 0), "nas.gid"),
                    "unix_permissions": as_int(nas.get("unix_permissions", 755), "nas.unix_permissions")},
            "guarantee": {"type": (body.get("guarantee") or {}).get("type", "volume"), "honored": True},
            "snapshot_policy": {"name": ref_name(body.get("snapshot_policy")) or "default"},
            "space": {"snapshot": {"reserve_percent": 5 if style == "flexvol" else 0},
                      "logical_space": {"enforcement": False, "reporting": False}},
            "encryption": {"enabled": False, "state": "none", "type": "none", "key_id": ""},
            "efficiency": {"compression": "none", "policy": {"name": "auto"}},
            "snaplock": {"type": "non_snaplock"},
            "tiering": {"policy": "none", "min_cooling_days": 0, "object_tags": []},
            "files": {"maximum": max(1, size // 32768), "used": 96},
            "qos": {"policy": {"name": ""}},
            "_links": link(f"/api/storage/volumes/{vol_uuid}"),
        }
        for key in ("space", "encryption", "efficiency", "tiering", "qos", "files", "snaplock"):
            if isinstance(body.get(key), dict):
                deep_merge(record[key], body[key])
        if "_tags" in body:
            record["_tags"] = body["_tags"]
        if style == "flexgroup":
            record["constituents_per_aggregate"] = len(placement) // len(distinct)
        return record

    def _place_volume(self, record: Record, placement: list[Record]) -> None:
        """Create the volume (and constituents); raises a space error when a thick one does not fit."""
        svm = self.svm_by_uuid(record["svm"]["uuid"])
        if svm is None or self._volume_named(svm, record["name"]):
            raise Duplicate(f"Duplicate volume name {record['name']}.", code="917526")
        n = len(placement) if record["style"] == "flexgroup" else 1
        parts = split_size(record["size"], n)
        if record["guarantee"]["type"] == "volume":
            need: dict[str, int] = {}
            for aggr, part in zip(placement, parts, strict=True):
                need[aggr["uuid"]] = need.get(aggr["uuid"], 0) + part
            for aggr in placement:
                free = self.aggregate_available(aggr)
                missing = need[aggr["uuid"]] - free
                if missing > 0:
                    at_most = free * n // placement.count(aggr)
                    raise OntapApiError(
                        f"Failed to create the volume on node \"{aggr['node']['name']}\". Reason: Request to "
                        f"create volume \"{record['name']}\" failed because there is not enough space in "
                        f"aggregate \"{aggr['name']}\". Either create {missing} bytes of free space in the "
                        f"aggregate or select a size of at most {at_most} bytes for the new volume.",
                        code="917536")
        record["files"]["maximum"] = max(1, record["size"] // 32768)
        record["nodes"] = [self.ref(self.node_by_name(a["node"]["name"]) or a["node"]) for a in placement[:1]]
        self.state["volumes"][record["uuid"]] = record
        if record["style"] == "flexgroup":
            record["nodes"] = list({a["node"]["uuid"]: dict(a["node"]) for a in placement}.values())
            for i, (aggr, part) in enumerate(zip(placement, parts, strict=True), start=1):
                self._add_constituent(record, i, aggr, part)
        if record["nas"]["path"]:
            self.volume_dir(record).mkdir(parents=True, exist_ok=True)

    def _add_constituent(self, parent: Record, index: int, aggr: Record, size: int) -> None:
        name = f"{parent['name']}__{index:04d}"
        c_uuid = self.new_uuid("volume", f"{parent['svm']['name']}/{name}")
        self.state["volumes"][c_uuid] = {
            "uuid": c_uuid, "name": name, "svm": dict(parent["svm"]), "style": "flexgroup_constituent",
            "type": parent["type"], "state": parent["state"], "size": size, "comment": "",
            "language": parent["language"], "create_time": parent["create_time"], "is_svm_root": False,
            "aggregates": [self.ref(aggr)], "nodes": [dict(aggr["node"])],
            "flexgroup": {"name": parent["name"], "uuid": parent["uuid"]},
            "nas": {"security_style": parent["nas"]["security_style"]},
            "guarantee": dict(parent["guarantee"]), "snapshot_policy": dict(parent["snapshot_policy"]),
            "space": {"snapshot": {"reserve_percent": 0}},
            "_links": link(f"/api/storage/volumes/{c_uuid}?is_constituent=true"),
        }

    def patch_volume(self, vol_uuid: str, body: dict[str, Any]) -> str:
        """Validate a volume PATCH and queue its job; returns the job uuid."""
        volume = self.find_volume(vol_uuid)
        for key in body:
            if key in PATCH_READ_ONLY:
                raise FieldNotSettable(key)
            if key not in VOLUME_FIELDS:
                raise UnexpectedArgument(key)
        self._check_enums(body)
        svm = self.svm_by_uuid(volume["svm"]["uuid"]) or {}
        nas = body.get("nas") or {}
        new_path = nas.get("path", volume["nas"].get("path", ""))
        new_state = body.get("state", volume["state"])
        if "path" in nas:
            self._check_junction(svm, new_path, volume)
            if new_path and volume["state"] != "online" and new_state != "online":
                raise OntapApiError(f"Volume \"{volume['name']}\" in SVM \"{svm['name']}\" is not online.",
                                    code="917533", target="nas.path")
        if new_state != "online" and new_path:
            raise mounted_error(volume)
        changes: dict[str, Any] = {k: v for k, v in body.items() if k not in ("nas", "size", "name")}
        if nas:
            changes["nas"] = dict(nas)
            if "export_policy" in nas:
                changes["nas"]["export_policy"] = self._export_policy_ref(svm, nas["export_policy"])
        size = as_size(body["size"]) if "size" in body else None
        new_name = body.get("name")
        if new_name is not None and new_name != volume["name"]:
            self._check_name(new_name, volume["style"])
            if self._volume_named(svm, new_name):
                raise Duplicate(f"Duplicate volume name {new_name}.", code="917526", target="name")

        def action() -> None:
            self._apply_volume_patch(volume, changes, size, new_name)

        return self.submit_job(f"PATCH /api/storage/volumes/{vol_uuid}", action, svm=self.svm_ref(svm))

    def _apply_volume_patch(self, volume: Record, changes: dict[str, Any], size: int | None,
                            new_name: str | None) -> None:
        if new_name and new_name != volume["name"]:
            old_dir = self.volume_dir(volume)
            volume["name"] = new_name
            if old_dir.exists():
                old_dir.rename(self.volume_dir(volume))
            for i, member in enumerate(self.constituents(volume), start=1):
                member["name"] = f"{new_name}__{i:04d}"
                member["flexgroup"]["name"] = new_name
        deep_merge(volume, changes)
        members = self.constituents(volume)
        if size is not None:
            for member, part in zip(members, split_size(size, len(members)) if members else [], strict=True):
                member["size"] = part
            volume["size"] = size
        for member in members:
            member["state"] = volume["state"]
        if volume["nas"].get("path"):
            self.volume_dir(volume).mkdir(parents=True, exist_ok=True)

    def delete_volume(self, vol_uuid: str) -> str:
        """Validate a volume DELETE and queue its job (mounted volumes are refused); returns the job uuid."""
        volume = self.state["volumes"].get(vol_uuid)
        if volume is None:
            raise EntryNotFound("uuid")
        if volume["style"] == "flexgroup_constituent":
            raise OntapApiError("Operation is only supported on flexible volumes and FlexGroup volumes.",
                                code="13107349")
        if volume["nas"].get("path"):
            raise mounted_error(volume)
        svm = self.svm_by_uuid(volume["svm"]["uuid"]) or {"name": "", "uuid": ""}

        def action() -> None:
            for member in self.constituents(volume):
                del self.state["volumes"][member["uuid"]]
            self.state["volumes"].pop(volume["uuid"], None)
            shutil.rmtree(self.volume_dir(volume), ignore_errors=True)
            self.forget_volume(volume)

        return self.submit_job(f"DELETE /api/storage/volumes/{vol_uuid}", action, svm=self.svm_ref(svm))
