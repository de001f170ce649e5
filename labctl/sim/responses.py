"""REST handlers: read the request, call the backend, shape the answer (HAL envelope, `fields`, paging)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from labctl.sim.exceptions import EntryNotFound, InvalidValue
from labctl.sim.models import OntapBackend
from labctl.sim.models.base import Record, link, public
from labctl.sim.query import as_bool, as_int, matches, parse_fields, select, values_at
from labctl.sim.strict import CONTROL_PARAMS

RESERVED = CONTROL_PARAMS


@dataclass
class Request:
    """One parsed REST call: decoded query (last value wins), expanded JSON body."""

    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    body: dict[str, Any]
    accept: str = "*/*"
    shorthands: dict[str, tuple[str, ...]] = field(default_factory=dict)  # `svm=x` → svm.name, svm.uuid


@dataclass
class Response:
    """An answer: status, JSON body, extra headers."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class PendingJob:
    """A handler's answer for an async operation; the app waits up to `return_timeout` for it."""

    job: str
    done_status: int
    location: str | None = None
    record: Record | None = None  # what `return_records=true` returns with the job (the object to be)


@dataclass(frozen=True)
class View:
    """How one kind of record is listed: key fields, fields left out of `*`, the cursor key."""

    keys: tuple[str, ...]
    expensive: tuple[str, ...] = ()


VIEWS = {
    "volume": View(("uuid", "name"), ("constituents",)),
    "named": View(("uuid", "name")),
    "nfs_service": View(("svm",)),
    "export_policy": View(("id", "name")),
    "rule": View(("index",)),
    "job": View(("uuid",)),
    "qtree": View(("id", "name", "volume")),
    "metric": View(("timestamp",)),
}


def shape(record: Record, view: View, fields: list[str] | None, extra: list[str], instance: bool) -> Record:
    """Apply `fields=` to a rendered record, always keeping keys, `_links` and filtered fields."""
    if fields is None and instance:
        fields = ["*"]
    fields = fields or []
    if "**" in fields:
        return record
    if "*" in fields:
        out = {k: v for k, v in record.items() if k not in view.expensive}
        wanted = [f for f in fields + extra if f.split(".")[0] in view.expensive]
        return {**out, **select(record, wanted)} if wanted else out
    out = select(record, list(view.keys) + fields + extra)
    if "_links" in record:
        out["_links"] = record["_links"]
    return out


def _filter_matches(record: Record, key: str, expression: str,
                    shorthands: dict[str, tuple[str, ...]]) -> bool:
    """A query filter; a shorthand (`svm=x`) matches the object's name or uuid (or id)."""
    return any(matches(record, path, expression) for path in shorthands.get(key, (key,)))


def collection(req: Request, records: list[Record], view: View) -> Response:
    """A HAL collection answer with filters, `order_by`, `max_records` paging and `return_records`."""
    q = req.query
    filters = {k: v for k, v in q.items() if k not in RESERVED and not k.startswith("start.")}
    records = [r for r in records
               if all(_filter_matches(r, k, v, req.shorthands) for k, v in filters.items())]
    if "order_by" in q:
        for term in reversed([t.strip() for t in q["order_by"].split(",") if t.strip()]):
            name, _, direction = term.partition(" ")
            records.sort(key=lambda r, n=name: str(values_at(r, n.split("."))), reverse=direction == "desc")
    links: dict[str, Any] = {"self": {"href": req.raw_path}}
    if "return_records" in q and not as_bool(q["return_records"], "return_records"):
        return Response(200, {"num_records": len(records), "_links": links})
    cursor_key = view.keys[0] if view.keys[0] != "svm" else "svm.uuid"
    start = q.get(f"start.{cursor_key}")
    if start is not None:
        keys = [str(values_at(r, cursor_key.split("."))[0]) for r in records]
        records = records[keys.index(start):] if start in keys else []
    limit = as_int(q["max_records"], "max_records") if "max_records" in q else None
    if limit is not None and limit < 1:
        raise InvalidValue("max_records", limit)
    if limit is not None and len(records) > limit:
        nxt = records[limit]
        records = records[:limit]
        params = {k: v for k, v in q.items() if not k.startswith("start.")}
        params[f"start.{cursor_key}"] = str(values_at(nxt, cursor_key.split("."))[0])
        links["next"] = {"href": f"{req.path}?{urlencode(params)}"}
    fields = parse_fields(q.get("fields"))
    shaped = [shape(r, view, fields, list(filters), instance=False) for r in records]
    return Response(200, {"records": shaped, "num_records": len(shaped), "_links": links})


def instance(req: Request, record: Record, view: View) -> Response:
    """A single-record answer with `fields=` applied (default `*`)."""
    return Response(200, shape(record, view, parse_fields(req.query.get("fields")), [], instance=True))


def created(req: Request, record: Record, view: View, location: str) -> Response:
    """201 with `Location`, and the record when `return_records=true`."""
    body: dict[str, Any] = {}
    if as_bool(req.query.get("return_records", "false"), "return_records"):
        body = {"num_records": 1, "records": [shape(record, view, ["*"], [], instance=True)]}
    return Response(201, body, {"Location": location})


class OntapResponses:
    """One method per REST operation; the route table in `urls.py` names them."""

    def __init__(self, backend: OntapBackend) -> None:
        self.backend = backend

    # cluster, nodes, jobs, aggregates -----------------------------------------------------------------------
    def get_cluster(self, req: Request) -> Response:
        return instance(req, public(self.backend.state["cluster"]), View(()))

    def patch_cluster(self, req: Request) -> PendingJob:
        return PendingJob(self.backend.patch_cluster(req.body), 200)

    def list_nodes(self, req: Request) -> Response:
        b = self.backend
        return collection(req, [b.render_node(n) for n in b.state["nodes"].values()], VIEWS["named"])

    def get_node(self, req: Request, uuid: str) -> Response:
        return instance(req, self.backend.render_node(self.backend.get_record("nodes", uuid)), VIEWS["named"])

    def list_jobs(self, req: Request) -> Response:
        return collection(req, [public(j) for j in self.backend.state["jobs"].values()], VIEWS["job"])

    def get_job(self, req: Request, uuid: str) -> Response:
        self.backend.get_record("jobs", uuid)
        self.backend.poll_job(uuid)
        return instance(req, public(self.backend.state["jobs"][uuid]), VIEWS["job"])

    def list_aggregates(self, req: Request) -> Response:
        b = self.backend
        records = [b.render_aggregate(a) for a in b.state["aggregates"].values()]
        return collection(req, records, VIEWS["named"])

    def get_aggregate(self, req: Request, uuid: str) -> Response:
        b = self.backend
        return instance(req, b.render_aggregate(b.get_record("aggregates", uuid)), VIEWS["named"])

    # volumes ----------------------------------------------------------------------------------------------
    def _is_constituent(self, req: Request) -> bool:
        return as_bool(req.query.get("is_constituent", "false"), "is_constituent")

    def list_volumes(self, req: Request) -> Response:
        constituents = self._is_constituent(req)
        vols = [v for v in self.backend.state["volumes"].values()
                if (v["style"] == "flexgroup_constituent") == constituents]
        return collection(req, [self.backend.render_volume(v) for v in vols], VIEWS["volume"])

    def get_volume(self, req: Request, uuid: str) -> Response:
        volume = self.backend.find_volume(uuid, self._is_constituent(req))
        return instance(req, self.backend.render_volume(volume), VIEWS["volume"])

    def list_volume_metrics(self, req: Request, volume_uuid: str) -> Response:
        """A volume's history (`interval` 1h by default: 15 s steps over the last hour)."""
        b = self.backend
        volume = b.state["volumes"].get(volume_uuid)
        if volume is None:
            raise EntryNotFound("volume.uuid")
        records = b.volume_metrics(volume, req.query.get("interval", "1h"))
        return collection(req, records, VIEWS["metric"])

    def create_volume(self, req: Request) -> PendingJob:
        job, location = self.backend.create_volume(req.body)
        return PendingJob(job, 201, location)

    def patch_volume(self, req: Request, uuid: str) -> PendingJob:
        """A volume PATCH; `?restore_to.snapshot.name=` (or `.uuid=`) restores it from a snapshot."""
        restore = {k.rsplit(".", 1)[1]: v for k, v in req.query.items()
                   if k.startswith("restore_to.snapshot.")}
        body = {**req.body, "restore_to": {"snapshot": restore}} if restore else req.body
        return PendingJob(self.backend.patch_volume(uuid, body), 200)

    def delete_volume(self, req: Request, uuid: str) -> PendingJob:
        return PendingJob(self.backend.delete_volume(uuid), 200)

    # snapshots and qtrees -------------------------------------------------------------------------------
    def list_snapshots(self, req: Request, volume_uuid: str) -> Response:
        records = [public(s) for s in self.backend.snapshots_of(volume_uuid)]
        return collection(req, records, VIEWS["named"])

    def get_snapshot(self, req: Request, volume_uuid: str, uuid: str) -> Response:
        return instance(req, public(self.backend.find_snapshot(volume_uuid, uuid)), VIEWS["named"])

    def create_snapshot(self, req: Request, volume_uuid: str) -> PendingJob:
        job, location = self.backend.create_snapshot(volume_uuid, req.body)
        return PendingJob(job, 201, location)

    def patch_snapshot(self, req: Request, volume_uuid: str, uuid: str) -> PendingJob:
        return PendingJob(self.backend.patch_snapshot(volume_uuid, uuid, req.body), 200)

    def delete_snapshot(self, req: Request, volume_uuid: str, uuid: str) -> PendingJob:
        return PendingJob(self.backend.delete_snapshot(volume_uuid, uuid), 200)

    def list_qtrees(self, req: Request) -> Response:
        b = self.backend
        return collection(req, [b.render_qtree(q) for q in b.state["qtrees"].values()], VIEWS["qtree"])

    def get_qtree(self, req: Request, volume_uuid: str, id: str) -> Response:
        qtree = self.backend.find_qtree(volume_uuid, id)
        return instance(req, self.backend.render_qtree(qtree), VIEWS["qtree"])

    def create_qtree(self, req: Request) -> PendingJob:
        job, location = self.backend.create_qtree(req.body)
        return PendingJob(job, 201, location)

    def patch_qtree(self, req: Request, volume_uuid: str, id: str) -> PendingJob:
        return PendingJob(self.backend.patch_qtree(volume_uuid, id, req.body), 200)

    def delete_qtree(self, req: Request, volume_uuid: str, id: str) -> PendingJob:
        return PendingJob(self.backend.delete_qtree(volume_uuid, id), 200)

    # SVMs -------------------------------------------------------------------------------------------------
    def list_svms(self, req: Request) -> Response:
        b = self.backend
        return collection(req, [b.render_svm(s) for s in b.state["svms"].values()], VIEWS["named"])

    def get_svm(self, req: Request, uuid: str) -> Response:
        return instance(req, self.backend.render_svm(self.backend.get_record("svms", uuid)), VIEWS["named"])

    def create_svm(self, req: Request) -> PendingJob:
        job, location = self.backend.create_svm(req.body)
        return PendingJob(job, 201, location)

    def patch_svm(self, req: Request, uuid: str) -> PendingJob:
        return PendingJob(self.backend.patch_svm(uuid, req.body), 200)

    def delete_svm(self, req: Request, uuid: str) -> PendingJob:
        return PendingJob(self.backend.delete_svm(uuid), 200)

    # NFS services -----------------------------------------------------------------------------------------
    def list_nfs_services(self, req: Request) -> Response:
        b = self.backend
        return collection(req, [b.render_nfs_service(s) for s in b.state["nfs_services"].values()],
                          VIEWS["nfs_service"])

    def get_nfs_service(self, req: Request, svm_uuid: str) -> Response:
        service = self.backend.get_record("nfs_services", svm_uuid, "svm.uuid")
        return instance(req, self.backend.render_nfs_service(service), VIEWS["nfs_service"])

    def create_nfs_service(self, req: Request) -> Response:
        service = self.backend.create_nfs_service(req.body)
        return created(req, self.backend.render_nfs_service(service), VIEWS["nfs_service"],
                       service["_links"]["self"]["href"])

    def patch_nfs_service(self, req: Request, svm_uuid: str) -> Response:
        self.backend.patch_nfs_service(svm_uuid, req.body)
        return Response(200, {})

    def delete_nfs_service(self, req: Request, svm_uuid: str) -> Response:
        self.backend.delete_nfs_service(svm_uuid)
        return Response(200, {})

    # export policies and rules ----------------------------------------------------------------------------
    def list_export_policies(self, req: Request) -> Response:
        b = self.backend
        return collection(req, [b.render_export_policy(p) for p in b.state["export_policies"].values()],
                          VIEWS["export_policy"])

    def get_export_policy(self, req: Request, id: str) -> Response:
        policy = self.backend.find_policy(id)
        return instance(req, self.backend.render_export_policy(policy), VIEWS["export_policy"])

    def create_export_policy(self, req: Request) -> Response:
        policy = self.backend.create_export_policy(req.body)
        return created(req, self.backend.render_export_policy(policy), VIEWS["export_policy"],
                       policy["_links"]["self"]["href"])

    def patch_export_policy(self, req: Request, id: str) -> Response:
        self.backend.patch_export_policy(id, req.body)
        return Response(200, {})

    def delete_export_policy(self, req: Request, id: str) -> Response:
        self.backend.delete_export_policy(id)
        return Response(200, {})

    def list_rules(self, req: Request, id: str) -> Response:
        policy = self.backend.find_policy(id, status=404)
        rules = [self.backend.render_rule(policy, r) for r in policy["rules"]]
        return collection(req, rules, VIEWS["rule"])

    def get_rule(self, req: Request, id: str, index: str) -> Response:
        policy = self.backend.find_policy(id)
        rule = self.backend.find_rule(policy, index)
        return instance(req, self.backend.render_rule(policy, rule), VIEWS["rule"])

    def create_rule(self, req: Request, id: str) -> Response:
        policy, rule = self.backend.create_export_rule(id, req.body)
        rendered = self.backend.render_rule(policy, rule)
        return created(req, rendered, VIEWS["rule"], rendered["_links"]["self"]["href"])

    def patch_rule(self, req: Request, id: str, index: str) -> Response:
        self.backend.patch_export_rule(id, index, req.body, req.query.get("new_index"))
        return Response(200, {})

    def delete_rule(self, req: Request, id: str, index: str) -> Response:
        self.backend.delete_export_rule(id, index)
        return Response(200, {})

    # network ----------------------------------------------------------------------------------------------
    def list_interfaces(self, req: Request) -> Response:
        b = self.backend
        records = [b.render_interface(i) for i in b.state["interfaces"].values()]
        return collection(req, records, VIEWS["named"])

    def get_interface(self, req: Request, uuid: str) -> Response:
        lif = self.backend.get_record("interfaces", uuid)
        return instance(req, self.backend.render_interface(lif), VIEWS["named"])

    def create_interface(self, req: Request) -> Response:
        lif = self.backend.create_interface(req.body)
        return created(req, self.backend.render_interface(lif), VIEWS["named"], lif["_links"]["self"]["href"])

    def patch_interface(self, req: Request, uuid: str) -> Response:
        self.backend.patch_interface(uuid, req.body)
        return Response(200, {})

    def delete_interface(self, req: Request, uuid: str) -> Response:
        self.backend.delete_interface(uuid)
        return Response(200, {})

    def list_fc_interfaces(self, req: Request) -> Response:
        return collection(req, [], VIEWS["named"])

    def get_fc_interface(self, req: Request, uuid: str) -> Response:
        raise EntryNotFound("uuid")

    # private CLI ------------------------------------------------------------------------------------------
    def list_recovery_queue(self, req: Request) -> Response:
        """`volume recovery-queue show`: always empty (deleted volumes are purged at once)."""
        return Response(200, {"records": [], "num_records": 0})


def job_link(job: str) -> dict[str, Any]:
    """The `{"job": {uuid, _links}}` body of an async answer."""
    return {"job": {"uuid": job, "_links": link(f"/api/cluster/jobs/{job}")}}
