"""REST handlers of the later resources: snapshot policies and their schedules, quota rules, CLI `show`s."""

from __future__ import annotations

from labctl.sim.models.cli import NFS_DEFAULT, VOLUME_DEFAULT
from labctl.sim.responses import (
    VIEWS,
    OntapResponses,
    PendingJob,
    Request,
    Response,
    View,
    collection,
    created,
    instance,
)

SCHEDULE_VIEW = View(("schedule",))
QUOTA_VIEW = View(("uuid",))


class MoreResponses(OntapResponses):
    """OntapResponses plus the handlers the later routes in `urls.py` name."""

    # snapshot policies ----------------------------------------------------------------------------------
    def list_snapshot_policies(self, req: Request) -> Response:
        b = self.backend
        records = [b.render_snapshot_policy(p) for p in b.state["snapshot_policies"].values()]
        return collection(req, records, VIEWS["named"])

    def get_snapshot_policy(self, req: Request, uuid: str) -> Response:
        b = self.backend
        return instance(req, b.render_snapshot_policy(b.find_snapshot_policy(uuid)), VIEWS["named"])

    def create_snapshot_policy(self, req: Request) -> Response:
        policy = self.backend.create_snapshot_policy(req.body)
        return created(req, self.backend.render_snapshot_policy(policy), VIEWS["named"],
                       policy["_links"]["self"]["href"])

    def patch_snapshot_policy(self, req: Request, uuid: str) -> Response:
        self.backend.patch_snapshot_policy(uuid, req.body)
        return Response(200, {})

    def delete_snapshot_policy(self, req: Request, uuid: str) -> Response:
        self.backend.delete_snapshot_policy(uuid)
        return Response(200, {})

    def list_policy_schedules(self, req: Request, policy_uuid: str) -> Response:
        return collection(req, self.backend.policy_schedules(policy_uuid), SCHEDULE_VIEW)

    def get_policy_schedule(self, req: Request, policy_uuid: str, uuid: str) -> Response:
        return instance(req, self.backend.find_policy_schedule(policy_uuid, uuid), SCHEDULE_VIEW)

    def create_policy_schedule(self, req: Request, policy_uuid: str) -> Response:
        record = self.backend.add_policy_schedule(policy_uuid, req.body)
        return created(req, record, SCHEDULE_VIEW, record["_links"]["self"]["href"])

    def patch_policy_schedule(self, req: Request, policy_uuid: str, uuid: str) -> Response:
        self.backend.patch_policy_schedule(policy_uuid, uuid, req.body)
        return Response(200, {})

    def delete_policy_schedule(self, req: Request, policy_uuid: str, uuid: str) -> Response:
        self.backend.remove_policy_schedule(policy_uuid, uuid)
        return Response(200, {})

    # quota rules ----------------------------------------------------------------------------------------
    def list_quota_rules(self, req: Request) -> Response:
        b = self.backend
        return collection(req, [b.render_quota_rule(r) for r in b.state["quota_rules"].values()], QUOTA_VIEW)

    def get_quota_rule(self, req: Request, uuid: str) -> Response:
        b = self.backend
        return instance(req, b.render_quota_rule(b.find_quota_rule(uuid)), QUOTA_VIEW)

    def create_quota_rule(self, req: Request) -> PendingJob:
        job, rule = self.backend.create_quota_rule(req.body)
        return PendingJob(job, 201, rule["_links"]["self"]["href"], self.backend.render_quota_rule(rule))

    def patch_quota_rule(self, req: Request, uuid: str) -> PendingJob:
        return PendingJob(self.backend.patch_quota_rule(uuid, req.body), 200)

    def delete_quota_rule(self, req: Request, uuid: str) -> PendingJob:
        return PendingJob(self.backend.delete_quota_rule(uuid), 200)

    # private CLI ----------------------------------------------------------------------------------------
    def cli_volume_show(self, req: Request) -> Response:
        """`volume show [-fields …]` with CLI arguments as query filters."""
        b = self.backend
        return Response(200, b.cli_show(b.cli_volume_rows(), req.query, ("vserver", "volume"),
                                        VOLUME_DEFAULT))

    def cli_nfs_show(self, req: Request) -> Response:
        """`vserver nfs show [-fields …]`."""
        b = self.backend
        return Response(200, b.cli_show(b.cli_nfs_rows(), req.query, ("vserver",),
                                        NFS_DEFAULT))
