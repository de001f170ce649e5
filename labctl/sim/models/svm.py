"""SVMs (with their root volume, `default` export policy and NFS service) and IP interfaces."""

from __future__ import annotations

import ipaddress
import shutil
from typing import Any

from labctl.sim.exceptions import Duplicate, FieldNotSettable, InvalidValue, OntapApiError, UnexpectedArgument
from labctl.sim.models.base import Record, link, public
from labctl.sim.models.counters import add_counters
from labctl.sim.models.nfs import NfsMixin, nfs_defaults
from labctl.sim.models.storage import StorageMixin
from labctl.sim.query import as_bool, deep_merge, ref_name

SERVICE_POLICIES = {
    "default-data-files": ["data_core", "data_nfs", "data_cifs", "data_flexcache"],
    "default-data-blocks": ["data_core", "data_iscsi"],
    "default-management": ["management_core", "management_http", "management_https", "management_ssh"],
    "default-intercluster": ["intercluster_core", "management_https"],
    "default-cluster": ["cluster_core"],
    "default-data-nvme-tcp": ["data_core", "data_nvme_tcp"],
}
SVM_FIELDS = {"name", "comment", "language", "ipspace", "snapshot_policy", "subtype", "aggregates", "nfs",
              "cifs", "iscsi", "fcp", "nvme", "ndmp", "s3", "max_volumes", "auto_enable_analytics",
              "auto_enable_activity_tracking", "state", "dns", "ip_interfaces", "routes", "storage", "uuid"}
SVM_NAME_TAKEN = "Invalid SVM name. The name is already in use by another SVM, IPSpace or cluster."
LIF_FIELDS = {"name", "svm", "location", "service_policy", "ip", "enabled", "scope", "ipspace", "subnet",
              "dns_zone", "ddns_enabled", "probe_port", "fail_if_subnet_conflicts", "vip", "rdma_protocols"}


class SvmMixin(StorageMixin, NfsMixin):
    """SVM lifecycle (jobs) and data LIFs (synchronous)."""

    # SVMs -------------------------------------------------------------------------------------------------
    def render_svm(self, svm: Record) -> Record:
        """The SVM as REST shows it."""
        out = public(svm)
        out["aggregates"] = [self.ref(a) for a in self.state["aggregates"].values()
                             if a["uuid"] in svm["_aggregates"]]
        return out

    def add_svm(self, name: str, body: dict[str, Any]) -> Record:
        """Create an SVM at once, with its root volume at `/`, `default` export policy and (if asked) NFS."""
        svm_uuid = self.new_uuid("svm", name)
        index = max((s["_index"] for s in self.state["svms"].values()), default=1) + 1
        svm: Record = {
            "uuid": svm_uuid, "name": name, "state": "running", "subtype": "default",
            "language": body.get("language", "c.utf_8"), "comment": body.get("comment", ""),
            "ipspace": {"name": "Default", "uuid": self.state["cluster"]["_ipspace_uuid"]},
            "snapshot_policy": {"name": ref_name(body.get("snapshot_policy")) or "default"},
            "nfs": {"allowed": True, "enabled": False}, "cifs": {"allowed": False, "enabled": False},
            "iscsi": {"allowed": False, "enabled": False}, "fcp": {"allowed": False, "enabled": False},
            "nvme": {"allowed": False, "enabled": False}, "ndmp": {"allowed": False},
            "s3": {"allowed": False, "enabled": False}, "max_volumes": "unlimited",
            "auto_enable_analytics": False, "auto_enable_activity_tracking": False,
            "_aggregates": [self.find_aggregate(a)["uuid"] for a in body.get("aggregates") or []],
            "_index": index, "_links": link(f"/api/svm/svms/{svm_uuid}"),
        }
        for proto in ("nfs", "cifs", "iscsi", "fcp", "nvme", "s3", "ndmp"):
            if isinstance(body.get(proto), dict):
                settings = {k: as_bool(v, f"{proto}.{k}") for k, v in body[proto].items()
                            if k in ("allowed", "enabled")}
                svm[proto].update(settings)
                if settings.get("enabled"):
                    svm[proto]["allowed"] = True
        self.state["svms"][svm_uuid] = svm
        self.add_export_policy(svm, "default")
        root = self._new_volume_record(svm, name.replace("-", "_") + "_root", "flexvol",
                                       {"size": 1 << 30, "guarantee": {"type": "none"}},
                                       {"path": "/"}, {"name": "default", "id": (index << 32) | 1},
                                       [next(iter(self.state["aggregates"].values()))], 1 << 30)
        root["is_svm_root"] = True
        self._place_volume(root, [self.find_aggregate(root["aggregates"][0])])
        if svm["nfs"]["enabled"]:
            self.create_nfs_service({"svm": {"uuid": svm_uuid}})
        return svm

    def create_svm(self, body: dict[str, Any]) -> tuple[str, str]:
        """POST /svm/svms: validate, then a job creates it; returns (job uuid, Location)."""
        unknown = set(body) - SVM_FIELDS
        if unknown:
            raise UnexpectedArgument(sorted(unknown)[0])
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise OntapApiError("Missing value for field \"name\".", code="2", target="name")
        taken = {s["name"] for s in self.state["svms"].values()} | {self.state["cluster"]["name"]}
        if name in taken:
            raise Duplicate(SVM_NAME_TAKEN, code="13434908", target="name")
        for ref in body.get("aggregates") or []:
            self.find_aggregate(ref)
        created: dict[str, Record] = {}

        def action() -> None:
            created["svm"] = self.add_svm(name, body)

        job = self.submit_job("POST /api/svm/svms", action)
        uuid = created["svm"]["uuid"] if "svm" in created else ""
        return job, f"/api/svm/svms/{uuid}" if uuid else f"/api/svm/svms/?name={name}"

    def patch_svm(self, svm_uuid: str, body: dict[str, Any]) -> str:
        """PATCH /svm/svms/{uuid}: validate, then a job applies it; returns the job uuid."""
        svm = self.get_record("svms", svm_uuid)
        for key in body:
            if key in ("uuid", "subtype", "ipspace"):
                raise FieldNotSettable(key)
            if key not in SVM_FIELDS:
                raise UnexpectedArgument(key)
        if "state" in body and body["state"] not in ("running", "stopped"):
            raise InvalidValue("state", body["state"])
        if "name" in body and body["name"] != svm["name"] and \
                any(s["name"] == body["name"] for s in self.state["svms"].values()):
            raise Duplicate(SVM_NAME_TAKEN, code="13434908", target="name")
        aggrs = [self.find_aggregate(a)["uuid"] for a in body.get("aggregates") or []]

        def action() -> None:
            changes = {k: v for k, v in body.items() if k in ("comment", "language", "state", "max_volumes")}
            deep_merge(svm, changes)
            if "aggregates" in body:
                svm["_aggregates"] = aggrs
            if "name" in body:
                svm["name"] = body["name"]
            for proto in ("nfs", "cifs", "iscsi", "fcp", "nvme", "s3"):
                if isinstance(body.get(proto), dict):
                    svm[proto].update({k: as_bool(v, proto) for k, v in body[proto].items()
                                       if k in ("allowed", "enabled")})

        return self.submit_job(f"PATCH /api/svm/svms/{svm_uuid}", action, svm=self.svm_ref(svm))

    def delete_svm(self, svm_uuid: str) -> str:
        """DELETE /svm/svms/{uuid}; refused while it holds volumes other than its root."""
        svm = self.get_record("svms", svm_uuid)
        if any(v["svm"]["uuid"] == svm_uuid and not v["is_svm_root"] for v in self.state["volumes"].values()):
            raise OntapApiError(f"Cannot delete Vserver \"{svm['name']}\" because it contains one or more "
                                "volumes other than its root volume.", code="13434920")

        def action() -> None:
            for coll in ("volumes", "interfaces"):
                for key, rec in list(self.state[coll].items()):
                    if rec["svm"]["uuid"] == svm_uuid:
                        del self.state[coll][key]
            for key, policy in list(self.state["export_policies"].items()):
                if policy["svm"]["uuid"] == svm_uuid:
                    del self.state["export_policies"][key]
            self.state["nfs_services"].pop(svm_uuid, None)
            del self.state["svms"][svm_uuid]
            shutil.rmtree(self.data_dir / svm["name"], ignore_errors=True)

        return self.submit_job(f"DELETE /api/svm/svms/{svm_uuid}", action)

    # IP interfaces ----------------------------------------------------------------------------------------
    def render_interface(self, lif: Record) -> Record:
        """The IP interface as REST shows it."""
        return add_counters(public(lif), "/api/network/ip/interfaces", self.now())

    def _home(self, location: dict[str, Any]) -> tuple[Record, str]:
        port = location.get("home_port") or {}
        if isinstance(port, str):
            port = {"name": port}
        node_name = ref_name(port.get("node")) or ref_name(location.get("home_node"))
        node = self.node_by_name(node_name)
        if node is None:
            field = "location.home_port.node.name"
            raise OntapApiError(f"\"{node_name}\" is an invalid value for field \"{field}\"", code="393271",
                                target=field)
        port_name = port.get("name") or "e0d"
        if port_name not in node["_ports"]:
            raise OntapApiError(f"\"{port_name}\" is an invalid value for field \"location.home_port.name\"",
                                code="1967130", target="location.home_port.name")
        return node, port_name

    @staticmethod
    def _ip(ip: Any) -> dict[str, Any]:
        if not isinstance(ip, dict) or "address" not in ip:
            raise OntapApiError("Missing value for field \"ip.address\".", code="2", target="ip.address")
        try:
            address = ipaddress.ip_address(ip["address"])
            mask = str(ip.get("netmask", "24"))
            prefix = ipaddress.ip_network(f"0.0.0.0/{mask}").prefixlen if "." in mask else int(mask)
        except ValueError as exc:
            raise InvalidValue("ip", ip) from exc
        return {"address": str(address), "netmask": str(prefix), "family": f"ipv{address.version}"}

    def create_interface(self, body: dict[str, Any]) -> Record:
        """POST /network/ip/interfaces: synchronous; homed (and current) on the given node and port."""
        unknown = set(body) - LIF_FIELDS
        if unknown:
            raise UnexpectedArgument(sorted(unknown)[0])
        svm = self.svm_from_body(body)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise OntapApiError("Missing value for field \"name\".", code="2", target="name")
        lifs = self.state["interfaces"].values()
        if any(i["name"] == name and i["svm"]["uuid"] == svm["uuid"] for i in lifs):
            raise Duplicate("An interface with the same name already exists.", code="1966140", target="name")
        ip = self._ip(body.get("ip"))
        if any(i["ip"]["address"] == ip["address"] for i in self.state["interfaces"].values()):
            raise OntapApiError("Duplicate IP address.", code="1376963", target="ip.address")
        node, port = self._home(body.get("location") or {})
        policy = ref_name(body.get("service_policy")) or "default-data-files"
        if policy not in SERVICE_POLICIES:
            raise InvalidValue("service_policy.name", policy)
        return self.add_interface(svm, name, node, port, ip, policy,
                                  as_bool(body.get("enabled", True), "enabled"))

    def add_interface(self, svm: Record, name: str, node: Record, port: str, ip: dict[str, Any], policy: str,
                      enabled: bool = True) -> Record:
        """A data LIF homed (and current) on `node`/`port`."""
        lif_uuid = self.new_uuid("interface", f"{svm['name']}/{name}")
        where = {"node": self.ref(node), "port": {"name": port, "node": {"name": node["name"]}}}
        lif = {"uuid": lif_uuid, "name": name, "enabled": enabled, "state": "up" if enabled else "down",
               "scope": "svm", "ip": ip, "vip": False,
               "location": {"home_node": self.ref(node), "home_port": where["port"], **where, "is_home": True,
                            "auto_revert": False, "failover": "default"},
               "service_policy": {"name": policy}, "services": list(SERVICE_POLICIES[policy]),
               "ipspace": {"name": "Default", "uuid": self.state["cluster"]["_ipspace_uuid"]},
               "svm": self.ref(svm), "_links": link(f"/api/network/ip/interfaces/{lif_uuid}")}
        self.state["interfaces"][lif_uuid] = lif
        return lif

    def patch_interface(self, lif_uuid: str, body: dict[str, Any]) -> None:
        """PATCH /network/ip/interfaces/{uuid} (address, state, policy, home, migrate, name)."""
        lif = self.get_record("interfaces", lif_uuid)
        for key in body:
            if key in ("svm", "scope", "ipspace", "uuid"):
                raise FieldNotSettable(key)
            if key not in LIF_FIELDS:
                raise UnexpectedArgument(key)
        if "ip" in body:
            ip = self._ip({**lif["ip"], **body["ip"]})
            lifs = self.state["interfaces"].values()
            if any(i["ip"]["address"] == ip["address"] and i is not lif for i in lifs):
                raise OntapApiError("Duplicate IP address.", code="1376963", target="ip.address")
            lif["ip"] = ip
        if "enabled" in body:
            lif["enabled"] = as_bool(body["enabled"], "enabled")
            lif["state"] = "up" if lif["enabled"] else "down"
        if "service_policy" in body:
            policy = ref_name(body["service_policy"])
            if policy not in SERVICE_POLICIES:
                raise InvalidValue("service_policy.name", policy)
            lif["service_policy"] = {"name": policy}
            lif["services"] = list(SERVICE_POLICIES[policy])
        if "name" in body:
            lif["name"] = body["name"]
        if "location" in body:
            loc = body["location"]
            self._relocate(lif, loc)

    def _relocate(self, lif: Record, loc: dict[str, Any]) -> None:
        """A `location` PATCH: a new home (the LIF follows it unless told where to go), and a migrate to
        `location.node`/`location.port`, which leaves the home as it is."""
        where = lif["location"]
        if "home_port" in loc or "home_node" in loc:
            node, port = self._home(loc)
            where.update(home_node=self.ref(node), home_port={"name": port, "node": {"name": node["name"]}})
            if "node" not in loc and "port" not in loc:
                where.update(node=dict(where["home_node"]), port=dict(where["home_port"]))
        if "node" in loc or "port" in loc:
            node, port = self._current(where, loc)
            where.update(node=self.ref(node), port={"name": port, "node": {"name": node["name"]}})
        where["is_home"] = (where["node"]["name"], where["port"]["name"]) == \
            (where["home_node"]["name"], where["home_port"]["name"])
        for key in ("auto_revert", "failover"):
            if key in loc:
                where[key] = loc[key]

    def _current(self, where: dict[str, Any], loc: dict[str, Any]) -> tuple[Record, str]:
        """The node and port a migrate goes to (a port on the node when only the node is named)."""
        port = loc.get("port") or {}
        if isinstance(port, str):
            port = {"name": port}
        node_name = ref_name(loc.get("node")) or ref_name(port.get("node")) or where["node"]["name"]
        node = self.node_by_name(node_name)
        if node is None:
            raise OntapApiError(f"\"{node_name}\" is an invalid value for field \"location.node.name\"",
                                code="393271", target="location.node.name")
        name = port.get("name") or (where["port"]["name"] if where["port"]["name"] in node["_ports"]
                                    else node["_ports"][0])
        if name not in node["_ports"]:
            raise OntapApiError(f"\"{name}\" is an invalid value for field \"location.port.name\"",
                                code="1967130", target="location.port.name")
        return node, name

    def delete_interface(self, lif_uuid: str) -> None:
        """DELETE /network/ip/interfaces/{uuid}; raises EntryNotFound."""
        self.get_record("interfaces", lif_uuid)
        del self.state["interfaces"][lif_uuid]

    def nfs_settings_for_seed(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Map the seed's flat NFS keys onto an NFS service body."""
        body = nfs_defaults()
        body["enabled"] = spec.get("enabled", True)
        proto = body["protocol"]
        for key in ("v3_enabled", "v40_enabled", "v41_enabled", "v42_enabled"):
            if key in spec:
                proto[key] = spec[key]
        proto["v41_features"]["pnfs_enabled"] = spec.get("pnfs_enabled", False)
        body["transport"]["tcp_max_transfer_size"] = spec.get("tcp_max_transfer_size", 65536)
        return body
