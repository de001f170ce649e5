"""The simulator's state container: collections of plain JSON records, lookups, seeding and dumps."""

from __future__ import annotations

import copy
import datetime as dt
import threading
import uuid as uuidlib
from pathlib import Path
from typing import Any

from labctl.sim.exceptions import EntryNotFound, OntapApiError, SvmNotFound, SvmRequired
from labctl.sim.query import ref_name

COLLECTIONS = ("cluster", "nodes", "aggregates", "svms", "volumes", "nfs_services", "export_policies",
               "interfaces", "jobs", "snapshots", "qtrees", "snapshot_policies", "quota_rules")
_SEED_NS = uuidlib.UUID("6f1c3a52-3f7e-4b8e-9a0e-5b1d2c3e4f50")

SEED_TIME = "2024-01-15T09:00:00+00:00"
Record = dict[str, Any]


def now_iso() -> str:
    """ONTAP's timestamp format (UTC, seconds)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def link(href: str) -> dict[str, Any]:
    """A HAL `_links` object with a self link."""
    return {"self": {"href": href}}


def public(record: Record) -> Record:
    """A deep copy without the simulator's private `_x` keys (`_links` and `_tags` stay)."""
    out: Record = {}
    for key, value in record.items():
        if key.startswith("_") and key not in ("_links", "_tags"):
            continue
        out[key] = copy.deepcopy(value)
    return out


class BackendBase:
    """Holds the cluster state and the lock that serialises every change to it."""

    def __init__(self, seed: dict[str, Any], data_dir: Path) -> None:
        self.lock = threading.RLock()
        self.seed_spec = seed
        self.data_dir = Path(data_dir)
        self.state: dict[str, Any] = {}
        self._seeding = False

    # ids ---------------------------------------------------------------------------------------------------
    def new_uuid(self, kind: str, name: str) -> str:
        """Deterministic uuids while seeding (stable dumps across resets), random ones afterwards."""
        if self._seeding:
            return str(uuidlib.uuid5(_SEED_NS, f"{kind}:{name}"))
        return str(uuidlib.uuid4())

    def now(self) -> str:
        """The current time, or a fixed one while seeding so that seeded dumps are identical."""
        return SEED_TIME if self._seeding else now_iso()

    # lookups -----------------------------------------------------------------------------------------------
    def svm_from_body(self, body: Record) -> Record:
        """The SVM named by `svm.name`/`svm.uuid` in a body; raises 2621707 or 2621462."""
        ref = body.get("svm")
        if isinstance(ref, str):
            ref = {"name": ref}
        if not isinstance(ref, dict) or not (ref.get("name") or ref.get("uuid")):
            raise SvmRequired()
        return self.find_svm(ref)

    def find_svm(self, ref: dict[str, Any]) -> Record:
        """The SVM record for `{"name"|"uuid": …}`; raises SvmNotFound."""
        for svm in self.state["svms"].values():
            if ref.get("uuid") in (None, svm["uuid"]) and ref.get("name") in (None, svm["name"]):
                return svm
        raise SvmNotFound(str(ref.get("name") or ref.get("uuid")))

    def svm_by_uuid(self, svm_uuid: str) -> Record | None:
        """The SVM record with this uuid, or None."""
        return self.state["svms"].get(svm_uuid)

    def node_by_name(self, name: str | None) -> Record | None:
        """The node record with this name, or None."""
        return next((n for n in self.state["nodes"].values() if n["name"] == name), None)

    def find_aggregate(self, ref: Any) -> Record:
        """The aggregate for `"x"`, `{"name": x}` or `{"uuid": u}`; raises 917508."""
        name = ref_name(ref)
        uid = ref.get("uuid") if isinstance(ref, dict) else None
        for aggr in self.state["aggregates"].values():
            if (uid and aggr["uuid"] == uid) or (name and aggr["name"] == name):
                return aggr
        raise OntapApiError("The target aggregate could not be found.", code="917508",
                            target="aggregates.name")

    def svm_volume(self, svm: Record, ref: Any, target: str = "volume") -> Record:
        """The SVM's volume (not a constituent) for `"x"`, `{"name": x}` or `{"uuid": u}`; raises 918236."""
        uid = ref.get("uuid") if isinstance(ref, dict) else None
        volume = next((v for v in self.state["volumes"].values() if v["svm"]["uuid"] == svm["uuid"]
                       and v["style"] != "flexgroup_constituent"
                       and (v["uuid"] == uid or v["name"] == ref_name(ref))), None)
        if volume is None:
            raise OntapApiError("Failed to get valid volume.", code="918236", target=target)
        return volume

    def get_record(self, collection: str, key: str, target: str = "uuid") -> Record:
        """The stored record `key` of `collection`; raises EntryNotFound (404, code 4)."""
        record = self.state[collection].get(str(key))
        if record is None:
            raise EntryNotFound(target)
        return record

    @staticmethod
    def ref(record: Record) -> dict[str, Any]:
        """A `{name, uuid}` reference to a record."""
        return {"name": record["name"], "uuid": record["uuid"]}

    def svm_ref(self, svm: Record) -> dict[str, Any]:
        """A `{name, uuid, _links}` reference to an SVM."""
        return {**self.ref(svm), "_links": link(f"/api/svm/svms/{svm['uuid']}")}

    # dumps -------------------------------------------------------------------------------------------------
    def dump(self, exclude: tuple[str, ...] = ("jobs",)) -> dict[str, Any]:
        """A deep copy of the state, without the excluded collections."""
        return {k: copy.deepcopy(v) for k, v in self.state.items() if k not in exclude}
