"""NFS services, export policies and export rules (all synchronous in ONTAP)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from labctl.sim.exceptions import (
    Duplicate,
    EntryNotFound,
    FieldNotSettable,
    InvalidValue,
    OntapApiError,
    UnexpectedArgument,
)
from labctl.sim.models.base import BackendBase, Record, link, public
from labctl.sim.query import as_bool, as_int, deep_merge

SECURITY_FLAVORS = ("any", "none", "never", "krb5", "krb5i", "krb5p", "ntlm", "sys")
PROTOCOLS = ("any", "nfs", "nfs3", "nfs4", "cifs", "flexcache", "nfs41", "nfs40", "nfs42")
RULE_FIELDS = {
    "index", "clients", "ro_rule", "rw_rule", "superuser", "protocols", "anonymous_user", "allow_suid",
    "allow_device_creation", "chown_mode", "ntfs_unix_security", "allow_nfs_tls_only",
}
_HOST_RE = re.compile(r"^(@[\w.-]+|[A-Za-z0-9*]([A-Za-z0-9*.-]*[A-Za-z0-9*])?)$")


def nfs_defaults() -> dict[str, Any]:
    """ONTAP's NFS service POST defaults (v4.1 and pNFS disabled, 64 KiB TCP max transfer size)."""
    return {
        "enabled": True, "state": "online", "vstorage_enabled": False, "rquota_enabled": False,
        "showmount_enabled": True, "auth_sys_extended_groups_enabled": False, "extended_groups_limit": 32,
        "protocol": {
            "v3_enabled": True, "v40_enabled": False, "v41_enabled": False, "v42_enabled": False,
            "v4_id_domain": "defaultv4iddomain.com", "v3_64bit_identifiers_enabled": False,
            "v4_64bit_identifiers_enabled": True, "v4_fsid_change": True, "v4_lease_seconds": 30,
            "v4_grace_seconds": 45, "v4_session_slots": 180, "v4_session_slot_reply_cache_size": 640,
            "v3_features": {"connection_drop": True, "ejukebox_enabled": True, "fsid_change": True,
                            "hide_snapshot_enabled": False, "mount_daemon_port": 635, "mount_root_only": True,
                            "network_lock_manager_port": 4045, "network_status_monitor_port": 4046,
                            "rquota_daemon_port": 4049},
            "v40_features": {"acl_enabled": False, "acl_max_aces": 400, "acl_preserve": True,
                             "read_delegation_enabled": False, "write_delegation_enabled": False,
                             "referrals_enabled": False},
            "v41_features": {"acl_enabled": False, "pnfs_enabled": False, "read_delegation_enabled": False,
                             "write_delegation_enabled": False, "referrals_enabled": False,
                             "trunking_enabled": False, "implementation_domain": "netapp.com",
                             "implementation_name": "NetApp Release 9.14.1"},
            "v42_features": {"seclabel_enabled": False, "sparsefile_ops_enabled": False,
                             "xattrs_enabled": False},
        },
        "transport": {"tcp_enabled": True, "udp_enabled": True, "rdma_enabled": False,
                      "tcp_max_transfer_size": 65536},
        "root": {"ignore_nt_acl": False, "skip_write_permission_check": False},
        "security": {"chown_mode": "restricted", "nt_acl_display_permission": False,
                     "ntfs_unix_security": "use_export_policy", "rpcsec_context_idle": 0,
                     "permitted_encryption_types": ["des", "des3", "aes_128", "aes_256"]},
        "windows": {"default_user": "", "map_unknown_uid_to_default_user": True,
                    "v3_ms_dos_client_enabled": False},
        "exports": {"netgroup_trust_any_nsswitch_no_match": False, "name_service_lookup_protocol": "udp"},
        "access_cache_config": {"ttl_positive": 60, "ttl_negative": 30, "ttl_failure": 1,
                                "harvest_timeout": 3600},
    }


_BOOL_PATHS = {"enabled", "vstorage_enabled", "rquota_enabled", "showmount_enabled",
               "auth_sys_extended_groups_enabled"}


def _coerce_nfs(body: Any, defaults: Any, path: str = "") -> Any:
    """Coerce string booleans/integers in an NFS body after the types of the defaults; reject unknown keys."""
    if isinstance(defaults, dict):
        if not isinstance(body, dict):
            raise InvalidValue(path, body)
        out = {}
        for key, value in body.items():
            sub = f"{path}.{key}" if path else key
            if key not in defaults:
                raise UnexpectedArgument(sub)
            out[key] = _coerce_nfs(value, defaults[key], sub)
        return out
    if isinstance(defaults, bool):
        return as_bool(body, path)
    if isinstance(defaults, int):
        return as_int(body, path)
    return body


class NfsMixin(BackendBase):
    """NFS services keyed by SVM uuid; export policies keyed by their integer id, rules inside them."""

    # services ---------------------------------------------------------------------------------------------
    def render_nfs_service(self, service: Record) -> Record:
        """The NFS service as REST shows it."""
        return public(service)

    def create_nfs_service(self, body: dict[str, Any]) -> Record:
        """POST /protocols/nfs/services: synchronous, ONTAP's defaults for what the body omits."""
        svm = self.svm_from_body(body)
        if svm["uuid"] in self.state["nfs_services"]:
            raise Duplicate(f"NFS service already exists for SVM \"{svm['name']}\".", code="3276861")
        if not svm["nfs"]["allowed"]:
            raise OntapApiError("The NFS protocol is not allowed for the specified SVM.", code="2621507")
        settings = _coerce_nfs({k: v for k, v in body.items() if k != "svm"}, nfs_defaults())
        service = deep_merge(nfs_defaults(), settings)
        service.update(svm=self.svm_ref(svm), _links=link(f"/api/protocols/nfs/services/{svm['uuid']}"))
        self.state["nfs_services"][svm["uuid"]] = service
        svm["nfs"]["enabled"] = service["enabled"]
        return service

    def patch_nfs_service(self, svm_uuid: str, body: dict[str, Any]) -> None:
        """PATCH /protocols/nfs/services/{svm.uuid}: synchronous; `svm` cannot change."""
        service = self.get_record("nfs_services", svm_uuid, "svm.uuid")
        if "svm" in body:
            raise FieldNotSettable("svm")
        svm = self.svm_by_uuid(svm_uuid)
        if svm and svm["state"] != "running":
            raise OntapApiError("Vserver is not running", code="3276916")
        settings = _coerce_nfs(body, nfs_defaults())
        size = settings.get("transport", {}).get("tcp_max_transfer_size")
        if size is not None and (size < 8192 or size > 1048576 or size % 4096):
            raise InvalidValue("transport.tcp_max_transfer_size", size)
        deep_merge(service, settings)
        if svm:
            svm["nfs"]["enabled"] = service["enabled"]

    def delete_nfs_service(self, svm_uuid: str) -> None:
        """DELETE /protocols/nfs/services/{svm.uuid}; raises EntryNotFound."""
        self.get_record("nfs_services", svm_uuid, "svm.uuid")
        del self.state["nfs_services"][svm_uuid]
        svm = self.svm_by_uuid(svm_uuid)
        if svm:
            svm["nfs"]["enabled"] = False

    # export policies --------------------------------------------------------------------------------------
    def render_export_policy(self, policy: Record) -> Record:
        """The export policy as REST shows it (rules included)."""
        return public(policy)

    def find_policy(self, policy_id: str, status: int = 404) -> Record:
        """The policy with this id; raises 404 code 4 (or 1703954 with another status)."""
        policy = self.state["export_policies"].get(str(policy_id))
        if policy is None:
            if status == 404:
                raise EntryNotFound("id")
            raise OntapApiError("Export policy does not exist", code="1703954", status=status,
                                target="policy.id")
        return policy

    def add_export_policy(self, svm: Record, name: str) -> Record:
        """A new, empty policy with id `(svm index << 32) | n`."""
        taken = [p["id"] & 0xFFFFFFFF for p in self.state["export_policies"].values()
                 if p["svm"]["uuid"] == svm["uuid"]]
        policy_id = (svm["_index"] << 32) | (max(taken, default=0) + 1)
        policy = {"id": policy_id, "name": name, "svm": self.svm_ref(svm), "rules": [],
                  "_links": link(f"/api/protocols/nfs/export-policies/{policy_id}")}
        self.state["export_policies"][str(policy_id)] = policy
        return policy

    def create_export_policy(self, body: dict[str, Any]) -> Record:
        """POST /protocols/nfs/export-policies; raises 2621462, 262197 or 409 code 1."""
        unknown = set(body) - {"name", "svm", "rules"}
        if unknown:
            raise UnexpectedArgument(sorted(unknown)[0])
        svm = self.svm_from_body(body)
        name = body.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,256}", name):
            raise InvalidValue("name", name)
        if any(p["name"] == name and p["svm"]["uuid"] == svm["uuid"]
               for p in self.state["export_policies"].values()):
            raise Duplicate(f"Export policy \"{name}\" already exists in SVM \"{svm['name']}\".", code="1",
                            target="name")
        rules = [self._rule_from_body(r) for r in body.get("rules") or []]
        policy = self.add_export_policy(svm, name)
        for rule in rules:
            self._insert_rule(policy, rule)
        return policy

    def patch_export_policy(self, policy_id: str, body: dict[str, Any]) -> None:
        """PATCH …/export-policies/{id}: rename and/or replace the rules."""
        policy = self.find_policy(policy_id)
        unknown = set(body) - {"name", "rules"}
        if unknown:
            raise (FieldNotSettable if unknown & {"svm", "id"} else UnexpectedArgument)(sorted(unknown)[0])
        if "name" in body and body["name"] != policy["name"]:
            if policy["name"] == "default":
                raise OntapApiError("Cannot rename the default export policy.", code="1703949", target="name")
            if any(p["name"] == body["name"] and p["svm"]["uuid"] == policy["svm"]["uuid"]
                   for p in self.state["export_policies"].values()):
                raise Duplicate(f"Export policy \"{body['name']}\" already exists.", code="1", target="name")
        rules = [self._rule_from_body(r) for r in body["rules"]] if "rules" in body else None
        if "name" in body:
            policy["name"] = body["name"]
            for vol in self.state["volumes"].values():
                ep = vol.get("nas", {}).get("export_policy")
                if ep and ep["id"] == policy["id"]:
                    ep["name"] = body["name"]
        if rules is not None:
            policy["rules"] = []
            for rule in rules:
                self._insert_rule(policy, rule)

    def delete_export_policy(self, policy_id: str) -> None:
        """DELETE …/export-policies/{id}; raises 1703947 (default) or 1703945 (in use)."""
        policy = self.find_policy(policy_id)
        if policy["name"] == "default":
            raise OntapApiError("Cannot delete default ruleset.  This ruleset will be deleted when the "
                                "owning Vserver is deleted", code="1703947")
        if any(v.get("nas", {}).get("export_policy", {}).get("id") == policy["id"]
               for v in self.state["volumes"].values()):
            raise OntapApiError("Ruleset is in use by a volume.  It cannot be deleted until all volumes that "
                                "refer to it are first deleted", code="1703945")
        del self.state["export_policies"][str(policy_id)]

    # export rules -----------------------------------------------------------------------------------------
    def render_rule(self, policy: Record, rule: Record) -> Record:
        """An export rule as REST shows it, with its policy and SVM."""
        out = public(rule)
        out["policy"] = {"id": policy["id"], "name": policy["name"]}
        out["svm"] = {"name": policy["svm"]["name"], "uuid": policy["svm"]["uuid"]}
        out["_links"] = link(f"/api/protocols/nfs/export-policies/{policy['id']}/rules/{rule['index']}")
        return out

    def find_rule(self, policy: Record, index: str) -> Record:
        """The rule at `index`; raises EntryNotFound (target `index`)."""
        for rule in policy["rules"]:
            if str(rule["index"]) == str(index):
                return rule
        raise EntryNotFound("index")

    @staticmethod
    def _check_client(match: Any) -> str:
        if not isinstance(match, str) or not match.strip():
            raise OntapApiError(f"Invalid clientmatch {match!r}", code="1704039", target="clients.match")
        match = match.strip()
        try:
            if "/" in match:
                ipaddress.ip_network(match, strict=False)
            else:
                ipaddress.ip_address(match)
            return match
        except ValueError:
            pass
        if "/" not in match and _HOST_RE.match(match) and not re.fullmatch(r"[\d.]+", match):
            return match
        raise OntapApiError(f"Invalid clientmatch {match}", code="1704039", target="clients.match")

    def _rule_from_body(self, body: dict[str, Any]) -> Record:
        unknown = set(body) - RULE_FIELDS
        if unknown:
            raise UnexpectedArgument(sorted(unknown)[0])
        clients = body.get("clients")
        if not isinstance(clients, list) or not clients:
            raise OntapApiError("Missing value for field \"clients\".", code="2", target="clients")
        rule: Record = {
            "clients": [{"match": self._check_client(c.get("match") if isinstance(c, dict) else c)}
                        for c in clients],
            "ro_rule": self._flavors(body, "ro_rule", None), "rw_rule": self._flavors(body, "rw_rule", None),
            "superuser": self._flavors(body, "superuser", ["any"]),
            "protocols": self._list_of(body, "protocols", ["any"], PROTOCOLS),
            "anonymous_user": str(body.get("anonymous_user", "65534")),
            "allow_suid": as_bool(body.get("allow_suid", True), "allow_suid"),
            "allow_device_creation": as_bool(body.get("allow_device_creation", True),
                                             "allow_device_creation"),
            "chown_mode": body.get("chown_mode", "restricted"),
            "ntfs_unix_security": body.get("ntfs_unix_security", "fail"),
            "allow_nfs_tls_only": as_bool(body.get("allow_nfs_tls_only", False), "allow_nfs_tls_only"),
        }
        if rule["chown_mode"] not in ("restricted", "unrestricted"):
            raise InvalidValue("chown_mode", rule["chown_mode"])
        if rule["ntfs_unix_security"] not in ("fail", "ignore"):
            raise InvalidValue("ntfs_unix_security", rule["ntfs_unix_security"])
        if "index" in body:
            rule["index"] = as_int(body["index"], "index")
        return rule

    def _flavors(self, body: dict[str, Any], key: str, default: list[str] | None) -> list[str]:
        if key not in body and default is None:
            raise OntapApiError(f"Missing value for field \"{key}\".", code="2", target=key)
        return self._list_of(body, key, default or [], SECURITY_FLAVORS)

    @staticmethod
    def _list_of(body: dict[str, Any], key: str, default: list[str], allowed: tuple[str, ...]) -> list[str]:
        value = body.get(key, default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise InvalidValue(key, value)
        for item in value:
            if item not in allowed:
                raise InvalidValue(key, item)
        return list(value)

    @staticmethod
    def _same_rule(a: Record, b: Record) -> bool:
        keys = RULE_FIELDS - {"index"}
        return all(a.get(k) == b.get(k) for k in keys)

    def _insert_rule(self, policy: Record, rule: Record) -> Record:
        """Append (index: one past the highest) or insert at `index`, moving that rule and later ones down
        by one. Indexes are never compacted: a delete leaves a gap, as in ONTAP."""
        rules = policy["rules"]
        index = rule.get("index")
        if index is not None and index < 1:
            raise InvalidValue("index", index)
        if index is None or all(r["index"] < index for r in rules):
            rule["index"] = index if index is not None else max((r["index"] for r in rules), default=0) + 1
            rules.append(rule)
        else:
            for r in rules:
                if r["index"] >= index:
                    r["index"] += 1
            rules.append(rule)
        rules.sort(key=lambda r: r["index"])
        return rule

    def create_export_rule(self, policy_id: str, body: dict[str, Any]) -> tuple[Record, Record]:
        """POST …/rules: append (or insert at `index`); returns (policy, rule)."""
        policy = self.find_policy(policy_id, status=404)
        rule = self._rule_from_body(body)
        if any(self._same_rule(rule, r) for r in policy["rules"]):
            raise Duplicate("Export policy rule already exists. A rule with the same client match, protocol, "
                            "and security settings is already in the policy.", code="1704070")
        return policy, self._insert_rule(policy, rule)

    def patch_export_rule(self, policy_id: str, index: str, body: dict[str, Any],
                          new_index: str | None) -> None:
        """PATCH …/rules/{index}; `new_index` moves the rule there (never clamped nor compacted)."""
        policy = self.find_policy(policy_id)
        rule = self.find_rule(policy, index)
        merged = {k: v for k, v in rule.items() if k != "index"}
        merged.update(body)
        updated = self._rule_from_body(merged)
        rule.clear()
        rule.update(updated, index=int(index))
        if new_index is not None:
            target = as_int(new_index, "new_index")
            policy["rules"].remove(rule)
            if target < 1:
                raise InvalidValue("new_index", new_index)
            rule["index"] = target
            self._insert_rule(policy, rule)  # setindex: others shift only when `target` is taken

    def delete_export_rule(self, policy_id: str, index: str) -> None:
        """DELETE …/rules/{index}; the other rules keep their indexes (ONTAP never renumbers on delete)."""
        policy = self.find_policy(policy_id)
        policy["rules"].remove(self.find_rule(policy, index))
