"""The route table: path patterns (trailing slash optional) → handler method names per HTTP method."""

from __future__ import annotations

import re

_SEG = r"(?P<{}>[^/]+)"

API_ROUTES: list[tuple[str, dict[str, str]]] = [
    ("/api/cluster", {"GET": "get_cluster", "PATCH": "patch_cluster"}),
    ("/api/cluster/nodes", {"GET": "list_nodes"}),
    ("/api/cluster/nodes/{uuid}", {"GET": "get_node"}),
    ("/api/cluster/jobs", {"GET": "list_jobs"}),
    ("/api/cluster/jobs/{uuid}", {"GET": "get_job"}),
    ("/api/storage/aggregates", {"GET": "list_aggregates"}),
    ("/api/storage/aggregates/{uuid}", {"GET": "get_aggregate"}),
    ("/api/storage/volumes", {"GET": "list_volumes", "POST": "create_volume"}),
    ("/api/storage/volumes/{uuid}",
     {"GET": "get_volume", "PATCH": "patch_volume", "DELETE": "delete_volume"}),
    ("/api/storage/volumes/{volume_uuid}/metrics", {"GET": "list_volume_metrics"}),
    ("/api/storage/volumes/{volume_uuid}/snapshots", {"GET": "list_snapshots", "POST": "create_snapshot"}),
    ("/api/storage/volumes/{volume_uuid}/snapshots/{uuid}",
     {"GET": "get_snapshot", "PATCH": "patch_snapshot", "DELETE": "delete_snapshot"}),
    ("/api/storage/qtrees", {"GET": "list_qtrees", "POST": "create_qtree"}),
    ("/api/storage/qtrees/{volume_uuid}/{id}",
     {"GET": "get_qtree", "PATCH": "patch_qtree", "DELETE": "delete_qtree"}),
    ("/api/svm/svms", {"GET": "list_svms", "POST": "create_svm"}),
    ("/api/svm/svms/{uuid}", {"GET": "get_svm", "PATCH": "patch_svm", "DELETE": "delete_svm"}),
    ("/api/protocols/nfs/services", {"GET": "list_nfs_services", "POST": "create_nfs_service"}),
    ("/api/protocols/nfs/services/{svm_uuid}",
     {"GET": "get_nfs_service", "PATCH": "patch_nfs_service", "DELETE": "delete_nfs_service"}),
    ("/api/protocols/nfs/export-policies", {"GET": "list_export_policies", "POST": "create_export_policy"}),
    ("/api/protocols/nfs/export-policies/{id}",
     {"GET": "get_export_policy", "PATCH": "patch_export_policy", "DELETE": "delete_export_policy"}),
    ("/api/protocols/nfs/export-policies/{id}/rules", {"GET": "list_rules", "POST": "create_rule"}),
    ("/api/protocols/nfs/export-policies/{id}/rules/{index}",
     {"GET": "get_rule", "PATCH": "patch_rule", "DELETE": "delete_rule"}),
    ("/api/network/ip/interfaces", {"GET": "list_interfaces", "POST": "create_interface"}),
    ("/api/network/ip/interfaces/{uuid}",
     {"GET": "get_interface", "PATCH": "patch_interface", "DELETE": "delete_interface"}),
    ("/api/network/fc/interfaces", {"GET": "list_fc_interfaces"}),
    ("/api/network/fc/interfaces/{uuid}", {"GET": "get_fc_interface"}),
    ("/api/storage/snapshot-policies", {"GET": "list_snapshot_policies", "POST": "create_snapshot_policy"}),
    ("/api/storage/snapshot-policies/{uuid}",
     {"GET": "get_snapshot_policy", "PATCH": "patch_snapshot_policy", "DELETE": "delete_snapshot_policy"}),
    ("/api/storage/snapshot-policies/{policy_uuid}/schedules",
     {"GET": "list_policy_schedules", "POST": "create_policy_schedule"}),
    ("/api/storage/snapshot-policies/{policy_uuid}/schedules/{uuid}",
     {"GET": "get_policy_schedule", "PATCH": "patch_policy_schedule", "DELETE": "delete_policy_schedule"}),
    ("/api/storage/quota/rules", {"GET": "list_quota_rules", "POST": "create_quota_rule"}),
    ("/api/storage/quota/rules/{uuid}",
     {"GET": "get_quota_rule", "PATCH": "patch_quota_rule", "DELETE": "delete_quota_rule"}),
    ("/api/private/cli/volume/recovery-queue", {"GET": "list_recovery_queue"}),
    ("/api/private/cli/volume", {"GET": "cli_volume_show"}),
    ("/api/private/cli/vserver/nfs", {"GET": "cli_nfs_show"}),
]

CONTROL_ROUTES: list[tuple[str, dict[str, str]]] = [
    ("/_sim/requests", {"GET": "get_requests", "DELETE": "clear_requests"}),
    ("/_sim/reset", {"POST": "reset"}),
    ("/_sim/faults", {"GET": "get_faults", "POST": "add_fault", "DELETE": "clear_faults"}),
    ("/_sim/state", {"GET": "get_state"}),
    ("/_sim/jobs", {"GET": "get_job_mode", "POST": "set_job_mode"}),
    ("/_sim/nfs/mount", {"POST": "nfs_mount"}),
    ("/_sim/nfs/io", {"POST": "nfs_io"}),
]


def _compile(routes: list[tuple[str, dict[str, str]]]) -> list[tuple[re.Pattern[str], dict[str, str], str]]:
    out = []
    for template, methods in routes:
        pattern = re.sub(r"\{(\w+)\}", lambda m: _SEG.format(m.group(1)), template)
        out.append((re.compile(f"^{pattern}/?$"), methods, template))
    return out


API = _compile(API_ROUTES)
CONTROL = _compile(CONTROL_ROUTES)


def resolve(path: str, table: list[tuple[re.Pattern[str], dict[str, str], str]]
            ) -> tuple[dict[str, str], dict[str, str]] | None:
    """(methods → handler name, path parameters) for `path`, or None when no route matches."""
    for pattern, methods, _template in table:
        match = pattern.match(path)
        if match:
            return methods, match.groupdict()
    return None


def template_of(path: str) -> str | None:
    """The API route template (`/api/storage/volumes/{uuid}`) that `path` matches, or None."""
    for pattern, _methods, template in API:
        if pattern.match(path):
            return template
    return None
