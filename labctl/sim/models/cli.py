"""CLI passthrough reads (`/api/private/cli/...`): `volume show` and `vserver nfs show` as flat records with
the CLI's field names (dashes become underscores, as ONTAP answers), derived from the REST state."""

from __future__ import annotations

from typing import Any

from labctl.sim.exceptions import OntapApiError
from labctl.sim.models.base import Record
from labctl.sim.models.storage import StorageMixin
from labctl.sim.query import matches, parse_fields

# The columns `volume show` prints without `-fields` (always returned with the keys vserver and volume).
VOLUME_DEFAULT = ("aggregate", "state", "type", "size", "available", "percent_used")
NFS_DEFAULT = ("access", "v3", "v4_0", "v4_1", "v4_1_pnfs")
ENABLED = {True: "enabled", False: "disabled"}
CONTROLS = {"fields", "privilege_level", "max_records", "return_records", "return_timeout", "order_by"}


def cli_name(name: str) -> str:
    """A CLI field or argument name as ONTAP returns it: `is-constituent` → `is_constituent`, `v4.1` →
    `v4_1` (both spellings are accepted)."""
    return name.strip().replace("-", "_").replace(".", "_")


class UnknownCliField(OntapApiError):
    """A `fields=` or query name the command does not have (code invented: see docs/simulator.md)."""

    code = "262179"

    def __init__(self, name: str) -> None:
        super().__init__(f"Unexpected argument \"{name}\".", target=name)


class CliMixin(StorageMixin):
    """The rows of the CLI `show` commands served through `/api/private/cli`."""

    def cli_volume_rows(self) -> list[Record]:
        """`volume show`: one row per volume (constituents included, marked `is_constituent`)."""
        rows = []
        for vol in self.state["volumes"].values():
            rendered = self.render_volume(vol)
            space = rendered.get("space", {})
            style = vol["style"].replace("_", "-")
            rows.append({
                "vserver": vol["svm"]["name"], "volume": vol["name"],
                "aggregate": vol["aggregates"][0]["name"] if vol["style"] != "flexgroup" else "-",
                "aggr_list": [a["name"] for a in vol["aggregates"]],
                "node": vol.get("nodes", [{}])[0].get("name", "-") if vol["style"] != "flexgroup" else "-",
                "state": vol["state"], "type": vol["type"].upper(), "size": vol["size"],
                "available": space.get("available", 0), "used": space.get("used", 0),
                "percent_used": space.get("percent_used", 0),
                "junction_path": vol.get("nas", {}).get("path") or "-",
                "policy": vol.get("nas", {}).get("export_policy", {}).get("name", "-"),
                "security_style": vol.get("nas", {}).get("security_style", "unix"),
                "snapshot_policy": vol.get("snapshot_policy", {}).get("name", "none"),
                "space_guarantee": vol["guarantee"]["type"],
                "is_constituent": vol["style"] == "flexgroup_constituent",
                "volume_style_extended": style, "uuid": vol["uuid"], "comment": vol.get("comment", "")})
        return rows

    def cli_nfs_rows(self) -> list[Record]:
        """`vserver nfs show`: one row per SVM with an NFS server."""
        rows = []
        for svm_uuid, service in self.state["nfs_services"].items():
            proto = service["protocol"]
            svm = self.svm_by_uuid(svm_uuid) or {"name": service["svm"]["name"]}
            rows.append({
                "vserver": svm["name"], "access": service["enabled"], "v3": ENABLED[proto["v3_enabled"]],
                "v4_0": ENABLED[proto["v40_enabled"]], "v4_1": ENABLED[proto["v41_enabled"]],
                "v4_2": ENABLED[proto["v42_enabled"]],
                "v4_1_pnfs": ENABLED[proto["v41_features"]["pnfs_enabled"]],
                "v4_1_trunking": ENABLED[proto["v41_features"]["trunking_enabled"]],
                "v4_id_domain": proto["v4_id_domain"],
                "tcp": ENABLED[service["transport"]["tcp_enabled"]],
                "udp": ENABLED[service["transport"]["udp_enabled"]],
                "tcp_max_xfer_size": service["transport"]["tcp_max_transfer_size"],
                "showmount": ENABLED[service["showmount_enabled"]],
                "vstorage": ENABLED[service["vstorage_enabled"]]})
        return rows

    @staticmethod
    def cli_show(rows: list[Record], query: dict[str, str], keys: tuple[str, ...],
                 default: tuple[str, ...]) -> dict[str, Any]:
        """Filter rows by the query's CLI arguments, keep the key columns and `fields=` (else the default
        columns); `fields=*`/`**` keeps every column."""
        known = set(rows[0]) if rows else set(keys) | set(default)
        filters = {}
        for key, value in query.items():
            if key in CONTROLS:
                continue
            name = cli_name(key)
            if rows and name not in known:
                raise UnknownCliField(key)
            filters[name] = value
        wanted = [cli_name(f) for f in parse_fields(query.get("fields")) or []]
        for name in wanted:
            if rows and name not in known and name not in ("*", "**"):
                raise UnknownCliField(name)
        columns = None if {"*", "**"} & set(wanted) else \
            list(dict.fromkeys([*keys, *(wanted or default), *filters]))
        out = []
        for row in rows:
            if all(matches(row, name, value) for name, value in filters.items()):
                out.append(row if columns is None else {k: row[k] for k in columns if k in row})
        return {"records": out, "num_records": len(out)}
