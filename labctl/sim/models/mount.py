"""What a real NFS server answers to a mount attempt, for the test hosts' `mount.nfs` shim."""

from __future__ import annotations

import ipaddress
from typing import Any

from labctl.sim.models.base import BackendBase, Record

MOUNT_FAILURE = 32  # mount(8)'s exit status for a mount failure
NCONNECT_MAX = 16


class MountRefused(Exception):
    """A mount attempt the server refuses; `message` is what mount.nfs prints."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def body(self) -> dict[str, Any]:
        """The control API's error envelope for this refusal."""
        return {"error": {"message": self.message, "code": self.reason, "exit_status": MOUNT_FAILURE}}


def parse_options(options: str) -> dict[str, str]:
    """`vers=4.1,rsize=1048576,hard` → `{"vers": "4.1", "rsize": "1048576", "hard": ""}`."""
    out: dict[str, str] = {}
    for item in filter(None, (o.strip() for o in options.split(","))):
        key, _, value = item.partition("=")
        out[key] = value
    return out


def client_matches(match: str, client: str) -> bool:
    """Export rule client match: `0.0.0.0/0`, a CIDR, an address or a host name."""
    try:
        addr = ipaddress.ip_address(client)
    except ValueError:
        return match == client
    try:
        if "/" in match:
            return addr in ipaddress.ip_network(match, strict=False)
        return addr == ipaddress.ip_address(match)
    except ValueError:
        return match == client or (match == "localhost" and addr.is_loopback)


class MountMixin(BackendBase):
    """`nfs_mount(server, export, client, options)` → the directory and the options the server grants."""

    def nfs_mount(self, server: str, export: str, client: str, options: str = "") -> dict[str, Any]:
        """Check what a real server checks; raises MountRefused with mount.nfs's message."""
        opts = parse_options(options)
        where = f"{server}:{export}"
        lif = next((i for i in self.state["interfaces"].values() if i["ip"]["address"] == server), None)
        svm = self.svm_by_uuid(lif["svm"]["uuid"]) if lif else None
        service = self.state["nfs_services"].get(svm["uuid"]) if svm else None
        if lif is None or not lif["enabled"] or "data_nfs" not in lif["services"] or svm is None \
                or svm["state"] != "running" or not svm["nfs"]["allowed"] or service is None \
                or not service["enabled"]:
            raise MountRefused("connection_refused", "mount.nfs: Connection refused")
        proto = service["protocol"]
        vers = opts.get("vers") or opts.get("nfsvers") or self._best_version(proto)
        enabled = {"3": proto["v3_enabled"], "4": proto["v40_enabled"] or proto["v41_enabled"],
                   "4.0": proto["v40_enabled"], "4.1": proto["v41_enabled"],
                   "4.2": proto["v42_enabled"] and proto["v41_enabled"]}
        if vers == "4":
            vers = "4.1" if proto["v41_enabled"] else "4.0"
        transport = opts.get("proto", "tcp")
        if not enabled.get(vers) or (transport == "udp" and vers != "3") \
                or not service["transport"].get(f"{transport}_enabled", False):
            raise MountRefused("protocol_not_supported", "mount.nfs: Protocol not supported")
        volume, rest = self._volume_at(svm, export)
        no_such = f"mount.nfs: mounting {where} failed, reason given by server: No such file or directory"
        if volume is None or volume["state"] != "online":
            raise MountRefused("no_such_export", no_such)
        directory = self.volume_dir(volume).joinpath(*rest)
        if not directory.is_dir():
            raise MountRefused("no_such_export", no_such)
        rule = self._matching_rule(volume, client, vers)
        if rule is None:
            raise MountRefused("access_denied", f"mount.nfs: access denied by server while mounting {where}")
        return {"directory": str(directory), "svm": svm["name"], "volume": volume["name"],
                "access": "rw" if set(rule["rw_rule"]) & {"sys", "any"} else "ro",
                "granted": self._granted(service, opts, vers, transport)}

    @staticmethod
    def _best_version(proto: dict[str, Any]) -> str:
        for vers, key in (("4.2", "v42_enabled"), ("4.1", "v41_enabled"), ("4.0", "v40_enabled"),
                          ("3", "v3_enabled")):
            if proto[key] and (vers != "4.2" or proto["v41_enabled"]):
                return vers
        return "3"

    def _volume_at(self, svm: Record, export: str) -> tuple[Record | None, list[str]]:
        """The volume whose junction is the longest prefix of `export`, and the path below it."""
        parts = [p for p in export.split("/") if p]
        for cut in range(len(parts), -1, -1):
            junction = "/" + "/".join(parts[:cut])
            for vol in self.state["volumes"].values():
                if vol["svm"]["uuid"] == svm["uuid"] and vol.get("nas", {}).get("path") == junction:
                    return vol, parts[cut:]
        return None, []

    def _matching_rule(self, volume: Record, client: str, vers: str) -> Record | None:
        policy = self.state["export_policies"].get(str(volume["nas"]["export_policy"]["id"]))
        wanted = {"any", "nfs", "nfs3"} if vers == "3" else {"any", "nfs", "nfs4"}
        for rule in (policy or {}).get("rules", []):
            if not set(rule["protocols"]) & wanted or not set(rule["ro_rule"]) & {"sys", "any"}:
                continue
            if any(client_matches(c["match"], client) for c in rule["clients"]):
                return rule
        return None

    @staticmethod
    def _granted(service: Record, opts: dict[str, str], vers: str, transport: str) -> dict[str, Any]:
        limit = service["transport"]["tcp_max_transfer_size"]

        def size(key: str) -> int:
            asked = int(opts[key]) if opts.get(key, "").isdigit() else limit
            return max(4096, min(asked, limit))

        nconnect = int(opts["nconnect"]) if opts.get("nconnect", "").isdigit() else 1
        return {"vers": vers, "rsize": size("rsize"), "wsize": size("wsize"),
                "nconnect": max(1, min(nconnect, NCONNECT_MAX)),
                "pnfs": vers in ("4.1", "4.2") and service["protocol"]["v41_features"]["pnfs_enabled"],
                "proto": transport, "hard": "soft" not in opts, "sec": opts.get("sec", "sys")}
