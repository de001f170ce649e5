"""Snapshot policies (`/api/storage/snapshot-policies`, their `schedules`) and the checks of the names a
volume refers to: snapshot policy, QoS policy, encryption (which needs a key manager)."""

from __future__ import annotations

import uuid as uuidlib
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
from labctl.sim.query import as_bool, as_int, ref_name

# The cluster-wide policies ONTAP ships (SDK snapshot_policy.py overview); `default`'s copies are the SDK's
# example record, `default-1weekly` keeps one weekly copy instead of two, `none` has no schedule.
BUILT_IN = {
    "default": ("Default policy with hourly, daily & weekly schedules.", True,
                [("hourly", 6), ("daily", 2), ("weekly", 2)]),
    "default-1weekly": ("Default policy with 6 hourly, 2 daily & 1 weekly schedule.", True,
                        [("hourly", 6), ("daily", 2), ("weekly", 1)]),
    "none": ("Policy for no automatic snapshots.", False, []),
}
SCHEDULES = ("5min", "hourly", "daily", "weekly", "monthly")  # job schedules named in the SDK's examples
# QoS policy groups every cluster has (the SDK's examples name `extreme` and `extreme-fixed`; the storage
# services are extreme, performance, value); `none` detaches the volume from any policy group.
QOS_PRESETS = ("none", "extreme", "performance", "value", "extreme-fixed", "performance-fixed", "value-fixed")
POLICY_FIELDS = {"name", "svm", "comment", "enabled", "copies", "scope"}
COPY_FIELDS = {"count", "prefix", "schedule", "snapmirror_label", "retention_period"}
MAX_COPIES = 5  # "can have up to a maximum of 5 schedules" (na_ontap_snapshot_policy)
_SCHEDULE_NS = uuidlib.UUID("0c5d2f7e-1b9a-4f3e-8d6c-2a7b9e4f1c30")


def schedule_ref(name: str) -> dict[str, Any]:
    """A job schedule reference; its uuid is fixed per name (the simulator serves no /cluster/schedules)."""
    return {"name": name, "uuid": str(uuidlib.uuid5(_SCHEDULE_NS, name))}


class PolicyNotFound(OntapApiError):
    """A volume names a snapshot policy that does not exist (code invented: see docs/simulator.md)."""

    code = "917622"

    def __init__(self, name: str, svm: str) -> None:
        super().__init__(f"Snapshot policy \"{name}\" does not exist in SVM \"{svm}\" or in the cluster.",
                         target="snapshot_policy.name")


class SnapshotPolicyMixin(StorageMixin):
    """Snapshot policies (synchronous, as `snapshot policy create`) and volume reference checks."""

    def seed_snapshot_policies(self) -> None:
        """The cluster-wide built-in policies."""
        for name, (comment, enabled, copies) in BUILT_IN.items():
            policy_uuid = self.new_uuid("snapshot_policy", name)
            self.state["snapshot_policies"][policy_uuid] = {
                "uuid": policy_uuid, "name": name, "comment": comment, "enabled": enabled, "scope": "cluster",
                "copies": [self._copy({"schedule": {"name": s}, "count": c}, "copies") for s, c in copies],
                "_links": link(f"/api/storage/snapshot-policies/{policy_uuid}")}

    # policies ---------------------------------------------------------------------------------------------
    def render_snapshot_policy(self, policy: Record) -> Record:
        """The policy as REST shows it."""
        return public(policy)

    def find_snapshot_policy(self, policy_uuid: str) -> Record:
        """A policy by uuid; raises EntryNotFound."""
        return self.get_record("snapshot_policies", policy_uuid)

    def snapshot_policy_named(self, name: str, svm: Record | None) -> Record | None:
        """The policy an SVM's volume sees under `name`: the SVM's own, else the cluster's."""
        candidates = [p for p in self.state["snapshot_policies"].values() if p["name"] == name]
        own = [p for p in candidates if svm is not None and p.get("svm", {}).get("uuid") == svm["uuid"]]
        cluster = [p for p in candidates if p["scope"] == "cluster"]
        return (own or cluster or [None])[0]

    @staticmethod
    def _copy(body: Any, target: str) -> Record:
        if not isinstance(body, dict):
            raise OntapApiError(f"\"{body}\" is an invalid value for field \"{target}\"", code="262197",
                                target=target)
        unknown = set(body) - COPY_FIELDS
        if unknown:
            raise UnexpectedArgument(f"{target}.{sorted(unknown)[0]}")
        schedule = ref_name(body.get("schedule"))
        if schedule not in SCHEDULES:  # code invented: see docs/simulator.md
            raise OntapApiError(f"Schedule \"{schedule}\" does not exist.", code="1638455",
                                target=f"{target}.schedule.name")
        if "count" not in body:
            raise OntapApiError(f"Missing value for field \"{target}.count\".", code="2",
                                target=f"{target}.count")
        copy: Record = {"count": as_int(body["count"], f"{target}.count"), "schedule": schedule_ref(schedule),
                        "prefix": body.get("prefix") or schedule,
                        "snapmirror_label": body.get("snapmirror_label") or "-"}
        if body.get("retention_period"):
            copy["retention_period"] = body["retention_period"]
        return copy

    def create_snapshot_policy(self, body: dict[str, Any]) -> Record:
        """POST /storage/snapshot-policies (synchronous)."""
        unknown = set(body) - POLICY_FIELDS
        if unknown:
            raise UnexpectedArgument(sorted(unknown)[0])
        svm = self.svm_from_body(body) if body.get("svm") else None
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise OntapApiError("Missing value for field \"name\".", code="2", target="name")
        copies = body.get("copies") or []
        if not 1 <= len(copies) <= MAX_COPIES:
            raise OntapApiError(f"A snapshot policy needs between 1 and {MAX_COPIES} schedules.",
                                code="1638432", target="copies")  # code invented: see docs/simulator.md
        taken = self.snapshot_policy_named(name, svm)
        if taken is not None and (svm is None or taken.get("svm", {}).get("uuid") == svm["uuid"]):
            raise Duplicate(f"Snapshot policy \"{name}\" already exists.", code="1638411", target="name")
        policy_uuid = self.new_uuid("snapshot_policy", f"{svm['name'] if svm else ''}/{name}")
        policy: Record = {
            "uuid": policy_uuid, "name": name, "comment": body.get("comment", ""),
            "enabled": as_bool(body.get("enabled", True), "enabled"),
            "scope": "svm" if svm else "cluster",
            "copies": [self._copy(c, "copies") for c in copies],
            "_links": link(f"/api/storage/snapshot-policies/{policy_uuid}")}
        if svm is not None:
            policy["svm"] = self.svm_ref(svm)
        self.state["snapshot_policies"][policy_uuid] = policy
        return policy

    def patch_snapshot_policy(self, policy_uuid: str, body: dict[str, Any]) -> None:
        """PATCH /storage/snapshot-policies/{uuid}: comment, enabled (schedules have their own path)."""
        policy = self.find_snapshot_policy(policy_uuid)
        for key in body:
            if key in ("svm", "scope", "name", "copies"):
                raise FieldNotSettable(key)
            if key not in POLICY_FIELDS:
                raise UnexpectedArgument(key)
        if "comment" in body:
            policy["comment"] = str(body["comment"])
        if "enabled" in body:
            policy["enabled"] = as_bool(body["enabled"], "enabled")

    def delete_snapshot_policy(self, policy_uuid: str) -> None:
        """DELETE /storage/snapshot-policies/{uuid}; refused for built-in or used policies."""
        policy = self.find_snapshot_policy(policy_uuid)
        if policy["scope"] == "cluster" and policy["name"] in BUILT_IN:
            raise OntapApiError(f"Cannot delete the built-in snapshot policy \"{policy['name']}\".",
                                code="1638421")  # code invented: see docs/simulator.md
        users = [v["name"] for v in self.state["volumes"].values()
                 if v.get("snapshot_policy", {}).get("name") == policy["name"]
                 and v["style"] != "flexgroup_constituent"
                 and (policy["scope"] == "cluster" or v["svm"]["uuid"] == policy["svm"]["uuid"])]
        if users:
            raise OntapApiError(f"Snapshot policy \"{policy['name']}\" is in use by volume \"{users[0]}\".",
                                code="1638420")  # code invented: see docs/simulator.md
        del self.state["snapshot_policies"][policy_uuid]

    # schedules of a policy ------------------------------------------------------------------------------
    def policy_schedules(self, policy_uuid: str) -> list[Record]:
        """`…/snapshot-policies/{uuid}/schedules`: one record per copy."""
        policy = self.find_snapshot_policy(policy_uuid)
        return [{**c, "snapshot_policy": {"name": policy["name"], "uuid": policy["uuid"]},
                 "_links": link(f"/api/storage/snapshot-policies/{policy_uuid}/schedules/"
                                f"{c['schedule']['uuid']}")} for c in policy["copies"]]

    def find_policy_schedule(self, policy_uuid: str, schedule_uuid: str) -> Record:
        """A schedule of a policy by the schedule's uuid; raises EntryNotFound."""
        found = [s for s in self.policy_schedules(policy_uuid) if s["schedule"]["uuid"] == schedule_uuid]
        if not found:
            raise EntryNotFound("schedule.uuid")
        return found[0]

    def add_policy_schedule(self, policy_uuid: str, body: dict[str, Any]) -> Record:
        """POST …/schedules: one more schedule (at most five)."""
        policy = self.find_snapshot_policy(policy_uuid)
        copy = self._copy({k: v for k, v in body.items() if k != "snapshot_policy"}, "schedule")
        if any(c["schedule"]["name"] == copy["schedule"]["name"] for c in policy["copies"]):
            raise Duplicate(f"Schedule \"{copy['schedule']['name']}\" is already in the policy.",
                            code="1638412", target="schedule.name")  # code invented
        if len(policy["copies"]) >= MAX_COPIES:
            raise OntapApiError(f"A snapshot policy can have at most {MAX_COPIES} schedules.", code="1638432")
        policy["copies"].append(copy)
        return self.find_policy_schedule(policy_uuid, copy["schedule"]["uuid"])

    def patch_policy_schedule(self, policy_uuid: str, schedule_uuid: str, body: dict[str, Any]) -> None:
        """PATCH …/schedules/{uuid}: count, snapmirror_label, retention_period."""
        self.find_policy_schedule(policy_uuid, schedule_uuid)
        policy = self.find_snapshot_policy(policy_uuid)
        copy = next(c for c in policy["copies"] if c["schedule"]["uuid"] == schedule_uuid)
        for key in body:
            if key in ("schedule", "prefix", "snapshot_policy"):
                raise FieldNotSettable(key)
            if key not in COPY_FIELDS:
                raise UnexpectedArgument(key)
        if "count" in body:
            copy["count"] = as_int(body["count"], "count")
        for key in ("snapmirror_label", "retention_period"):
            if key in body:
                copy[key] = body[key]

    def remove_policy_schedule(self, policy_uuid: str, schedule_uuid: str) -> None:
        """DELETE …/schedules/{uuid}; the last schedule stays (a policy keeps at least one)."""
        self.find_policy_schedule(policy_uuid, schedule_uuid)
        policy = self.find_snapshot_policy(policy_uuid)
        if len(policy["copies"]) == 1:
            raise OntapApiError("A snapshot policy must have at least one schedule.",
                                code="1638433")  # code invented: see docs/simulator.md
        policy["copies"] = [c for c in policy["copies"] if c["schedule"]["uuid"] != schedule_uuid]

    # references from volumes ----------------------------------------------------------------------------
    def check_volume_references(self, svm: Record, body: dict[str, Any]) -> None:
        """A volume POST/PATCH naming a missing snapshot or QoS policy, or asking for encryption without a
        key manager, is refused before any job starts."""
        if "snapshot_policy" in body:
            name = ref_name(body["snapshot_policy"])
            if name and self.snapshot_policy_named(name, svm) is None:
                raise PolicyNotFound(name, svm["name"])
        qos = ref_name((body.get("qos") or {}).get("policy")) if isinstance(body.get("qos"), dict) else None
        if qos and qos not in QOS_PRESETS:
            raise OntapApiError(f"QoS policy group \"{qos}\" does not exist.", code="8454147",
                                target="qos.policy.name")  # code invented: see docs/simulator.md
        encryption = body.get("encryption")
        if isinstance(encryption, dict) and encryption.get("enabled") is True:
            raise OntapApiError("Failed to create or modify the volume because no key manager is configured "
                                "for the cluster or SVM. Configure a key manager and retry.",
                                code="13434898", target="encryption.enabled")  # code invented

    def create_volume(self, body: dict[str, Any]) -> tuple[str, str]:
        """Volume POST with its references checked first."""
        svm = self.svm_from_body(body)
        self.check_volume_references(svm, body)
        return super().create_volume(body)

    def patch_volume(self, vol_uuid: str, body: dict[str, Any]) -> str:
        """Volume PATCH with its references checked first."""
        volume = self.find_volume(vol_uuid)
        svm = self.svm_by_uuid(volume["svm"]["uuid"]) or {"name": volume["svm"]["name"], "uuid": ""}
        self.check_volume_references(svm, body)
        return super().patch_volume(vol_uuid, body)
