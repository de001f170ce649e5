"""The simulated cluster: one `OntapBackend` holds every collection and the rules that change them."""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
from pathlib import Path
from typing import Any

from labctl.fileops import write_text_atomic
from labctl.sim.exceptions import InvalidValue, UnexpectedArgument
from labctl.sim.models.base import COLLECTIONS, link, public
from labctl.sim.models.cli import CliMixin
from labctl.sim.models.clone import CloneMixin
from labctl.sim.models.counters import add_counters
from labctl.sim.models.io_stats import IoStats, IoStatsMixin
from labctl.sim.models.mount import MountMixin, MountRefused
from labctl.sim.models.move import MoveMixin
from labctl.sim.models.quotas import QuotaMixin
from labctl.sim.models.snapshot_policies import SnapshotPolicyMixin
from labctl.sim.models.svm import SvmMixin
from labctl.sim.query import ref_name

__all__ = ["OntapBackend", "MountRefused"]

CLUSTER_SETTABLE = {"name", "location", "contact"}


class OntapBackend(
    IoStatsMixin, MoveMixin, QuotaMixin, SnapshotPolicyMixin, CloneMixin, CliMixin, SvmMixin, MountMixin
):
    """The state machine of the cluster: every create, change and delete goes through this class."""

    def __init__(self, seed: dict[str, Any], data_dir: Path, state_file: Path | None = None) -> None:
        super().__init__(seed, data_dir)
        self.state_file = state_file
        self._saved: str | None = None
        self.init_jobs()
        self._pending_names: set[tuple[str, str]] = set()
        self._du_cache = {}
        self.io = IoStats()
        if state_file is not None and state_file.exists():
            self.load(json.loads(state_file.read_text(encoding="utf-8")))
        else:
            self.reset()

    def reset(self) -> None:
        """Back to the seeded cluster: state, jobs, job mode and volume directories."""
        with self.lock:
            self._remove_volume_dirs()
            self.init_jobs()
            self._pending_names = set()
            self._du_cache = {}
            self.io = IoStats()
            self.state = {name: {} for name in COLLECTIONS}
            self._seeding = True
            try:
                self._build_seed(copy.deepcopy(self.seed_spec))
                self.seed_snapshot_policies()
            finally:
                self._seeding = False
            self.save()

    def _build_seed(self, seed: dict[str, Any]) -> None:
        cluster = seed["cluster"]
        generation, major, minor = (int(x) for x in str(cluster["version"]).split("."))
        full = cluster.get("version_full") or f"NetApp Release {cluster['version']}"
        version = {"full": full, "generation": generation, "major": major, "minor": minor}
        cluster_uuid = self.new_uuid("cluster", cluster["name"])
        self.state["cluster"] = {
            "name": cluster["name"], "uuid": cluster_uuid, "version": version, "location": "", "contact": "",
            "dns_domains": [], "name_servers": [], "ntp_servers": [], "timezone": {"name": "Etc/UTC"},
            "san_optimized": False, "_ipspace_uuid": self.new_uuid("ipspace", "Default"),
            "_links": link("/api/cluster")}
        names = [n["name"] for n in seed["nodes"]]
        for i, spec in enumerate(seed["nodes"]):
            node_uuid = self.new_uuid("node", spec["name"])
            partners = [{"name": n, "uuid": self.new_uuid("node", n)} for n in names if n != spec["name"]]
            self.state["nodes"][node_uuid] = {
                "uuid": node_uuid, "name": spec["name"], "state": "up", "membership": "member",
                "model": spec.get("model", "AFF-A400"), "serial_number": f"7219{i:08d}",
                "system_id": f"05371{i:05d}", "location": "",
                "uptime": 86400, "date": self.now(), "version": dict(version),
                "ha": {"enabled": len(names) > 1, "auto_giveback": True, "partners": partners[:1],
                       "takeover": {"state": "not_attempted"}, "giveback": {"state": "nothing_to_giveback"}},
                "_ports": list(spec.get("ports", ["e0c", "e0d"])),
                "_links": link(f"/api/cluster/nodes/{node_uuid}")}
        for spec in seed["aggregates"]:
            node = self.node_by_name(spec["node"])
            if node is None:
                raise ValueError(f"seed: aggregate {spec['name']} is on unknown node {spec['node']}")
            self.add_aggregate(spec["name"], node, int(spec["size"]), int(spec.get("used", 0)))
        for spec in seed["svms"]:
            nfs = spec.get("nfs")
            svm = self.add_svm(spec["name"], {"nfs": {"allowed": True, "enabled": False},
                                              "aggregates": spec.get("aggregates", [])})
            if nfs is not None:
                body = self.nfs_settings_for_seed(nfs)
                body["svm"] = {"uuid": svm["uuid"]}
                self.create_nfs_service(body)
            for lif in spec.get("interfaces", []):
                node = self.node_by_name(lif["node"])
                if node is None:
                    raise ValueError(f"seed: interface {lif['name']} is on unknown node {lif['node']}")
                self.add_interface(svm, lif["name"], node, lif.get("port", "e0d"),
                                   self._ip({"address": lif["address"], "netmask": lif.get("netmask", "24")}),
                                   ref_name(lif.get("service_policy")) or "default-data-files")

    def patch_cluster(self, body: dict[str, Any]) -> str:
        """PATCH /api/cluster: name, location, contact (a job, as on ONTAP); returns the job uuid."""
        unknown = set(body) - CLUSTER_SETTABLE
        if unknown:
            raise UnexpectedArgument(sorted(unknown)[0])
        if "name" in body and not body["name"]:
            raise InvalidValue("name", body["name"])
        changes = {k: v if isinstance(v, str) else str(v) for k, v in body.items()}
        return self.submit_job("PATCH /api/cluster", lambda: self.state["cluster"].update(changes))

    def render_node(self, node: dict[str, Any]) -> dict[str, Any]:
        """The node as REST shows it, with its counters."""
        return add_counters(public(node), "/api/cluster/nodes", self.now(), self.node_io(node))

    def _remove_volume_dirs(self) -> None:
        """Delete the directories of the volumes in the state (never anything else under data_dir)."""
        for volume in self.state.get("volumes", {}).values():
            if volume["style"] != "flexgroup_constituent":
                shutil.rmtree(self.volume_dir(volume), ignore_errors=True)
        shutil.rmtree(self.data_dir / ".snapshots", ignore_errors=True)
        for svm in self.state.get("svms", {}).values():
            with contextlib.suppress(OSError):
                (self.data_dir / svm["name"]).rmdir()

    # persistence ------------------------------------------------------------------------------------------
    def load(self, dump: dict[str, Any]) -> None:
        """Adopt a saved state (jobs are not kept across restarts)."""
        with self.lock:
            self.state = {name: copy.deepcopy(dump.get(name, {})) for name in COLLECTIONS}
            self.state["jobs"] = {}

    def save(self) -> None:
        """Write the state (without jobs) to the state file atomically, when there is one and it changed."""
        if self.state_file is None:
            return
        with self.lock:
            text = json.dumps(self.dump(), sort_keys=True, indent=1)
            if text == self._saved:
                return
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.state_file, text, mode=0o600)
            self._saved = text

