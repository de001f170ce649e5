"""Quota rules (`/api/storage/quota/rules`: tree, user and group rules) and a volume's quota state."""

from __future__ import annotations

from typing import Any

from labctl.sim.exceptions import (
    Duplicate,
    FieldNotSettable,
    OntapApiError,
    UnexpectedArgument,
)
from labctl.sim.models.base import Record, link, public
from labctl.sim.models.storage import StorageMixin
from labctl.sim.query import as_bool, as_size, ref_name

RULE_FIELDS = {"svm", "volume", "type", "qtree", "users", "group", "space", "files", "user_mapping"}
LIMITS = ("hard_limit", "soft_limit")
NO_LIMIT = "-"  # REST resets a limit with "-" (na_ontap_quotas)


class QuotaMixin(StorageMixin):
    """Quota rules are jobs, as on ONTAP; `PATCH volume quota.enabled` turns a volume's quotas on or off."""

    def render_quota_rule(self, rule: Record) -> Record:
        """The rule as REST shows it."""
        return public(rule)

    def find_quota_rule(self, rule_uuid: str) -> Record:
        """A rule by uuid; raises EntryNotFound."""
        return self.get_record("quota_rules", rule_uuid)

    @staticmethod
    def _limits(body: dict[str, Any], rule: Record) -> None:
        """Copy `space`/`files` limits from a body into a rule; `"-"` (or null) removes a limit."""
        for kind in ("space", "files"):
            given = body.get(kind)
            if given is None:
                continue
            if not isinstance(given, dict):
                raise OntapApiError(f"\"{given}\" is an invalid value for field \"{kind}\"", code="262197",
                                    target=kind)
            limits = rule.setdefault(kind, {})
            for key, value in given.items():
                if key not in LIMITS:
                    raise UnexpectedArgument(f"{kind}.{key}")
                if value in (None, NO_LIMIT):
                    limits.pop(key, None)
                else:
                    limits[key] = as_size(value, f"{kind}.{key}")
            if not limits:
                del rule[kind]

    @staticmethod
    def _rule_key(rule: Record) -> tuple[Any, ...]:
        users = tuple(sorted(u.get("name") or u.get("id") or "" for u in rule.get("users", [])))
        return (rule["volume"]["uuid"], rule["type"], rule.get("qtree", {}).get("name", ""), users,
                rule.get("group", {}).get("name", ""))

    def create_quota_rule(self, body: dict[str, Any]) -> tuple[str, Record]:
        """POST /storage/quota/rules: validate, then a job adds the rule; returns (job, the rule to be)."""
        unknown = set(body) - RULE_FIELDS
        if unknown:
            raise UnexpectedArgument(sorted(unknown)[0])
        svm = self.svm_from_body(body)
        volume = self.svm_volume(svm, body.get("volume"))
        kind = body.get("type")
        if kind not in ("tree", "user", "group"):
            raise OntapApiError(f"\"{kind}\" is an invalid value for field \"type\"", code="262197",
                                target="type")
        rule: Record = {"svm": self.ref(svm), "volume": self.ref(volume), "type": kind}
        qtree = ref_name(body.get("qtree")) or ""
        if qtree or kind == "tree":
            rule["qtree"] = {"name": qtree}
        if kind == "user":
            users = body.get("users") or []
            rule["users"] = [{"name": ref_name(u)} if not isinstance(u, dict) else
                             {k: str(v) for k, v in u.items() if k in ("name", "id")} for u in users]
            if "user_mapping" in body:
                rule["user_mapping"] = as_bool(body["user_mapping"], "user_mapping")
        elif "users" in body or "user_mapping" in body:
            raise OntapApiError("\"users\" and \"user_mapping\" are valid for user rules only.",
                                code="5308603", target="users")  # code invented: see docs/simulator.md
        if kind == "group":
            rule["group"] = {"name": ref_name(body.get("group")) or ""}
        self._limits(body, rule)
        if any(self._rule_key(r) == self._rule_key(rule) for r in self.state["quota_rules"].values()):
            raise Duplicate("Quota policy rule already exists.", code="5308561")  # code invented
        rule_uuid = self.new_uuid("quota_rule", repr(self._rule_key(rule)))
        rule["uuid"] = rule_uuid
        rule["_links"] = link(f"/api/storage/quota/rules/{rule_uuid}")

        def action() -> None:
            self.state["quota_rules"][rule_uuid] = rule

        job = self.submit_job(f"POST /api/storage/quota/rules/{rule_uuid}", action, svm=self.svm_ref(svm))
        return job, rule

    def patch_quota_rule(self, rule_uuid: str, body: dict[str, Any]) -> str:
        """PATCH /storage/quota/rules/{uuid}: limits and user mapping (a job)."""
        rule = self.find_quota_rule(rule_uuid)
        for key in body:
            if key in ("svm", "volume", "type", "qtree", "users", "group"):
                raise FieldNotSettable(key)
            if key not in RULE_FIELDS:
                raise UnexpectedArgument(key)
        changed = {k: dict(v) if isinstance(v, dict) else v for k, v in rule.items()}
        self._limits(body, changed)
        if "user_mapping" in body:
            changed["user_mapping"] = as_bool(body["user_mapping"], "user_mapping")

        def action() -> None:
            rule.clear()
            rule.update(changed)

        return self.submit_job(f"PATCH /api/storage/quota/rules/{rule_uuid}", action)

    def delete_quota_rule(self, rule_uuid: str) -> str:
        """DELETE /storage/quota/rules/{uuid} (a job)."""
        self.find_quota_rule(rule_uuid)
        return self.submit_job(f"DELETE /api/storage/quota/rules/{rule_uuid}",
                               lambda: self.state["quota_rules"].pop(rule_uuid, None))

    # a volume's quota state -------------------------------------------------------------------------------
    def render_volume(self, volume: Record) -> Record:
        """The volume with its `quota.state` (`off` until enabled)."""
        out = super().render_volume(volume)
        if volume["style"] != "flexgroup_constituent":
            out["quota"] = {"state": volume.get("_quota_state", "off")}
        return out

    def patch_volume(self, vol_uuid: str, body: dict[str, Any]) -> str:
        """A volume PATCH; `quota.enabled` turns quotas on or off (its own job)."""
        if "quota" not in body:
            return super().patch_volume(vol_uuid, body)
        volume = self.find_volume(vol_uuid)
        quota = body["quota"] if isinstance(body["quota"], dict) else {}
        if set(quota) - {"enabled"}:
            raise FieldNotSettable("quota.state")
        if "enabled" not in quota:
            raise OntapApiError("Missing value for field \"quota.enabled\".", code="2",
                                target="quota.enabled")
        state = "on" if as_bool(quota["enabled"], "quota.enabled") else "off"

        def action() -> None:
            volume["_quota_state"] = state

        job = self.submit_job(f"PATCH /api/storage/volumes/{vol_uuid}", action)
        rest = {k: v for k, v in body.items() if k != "quota"}
        return super().patch_volume(vol_uuid, rest) if rest else job

    def forget_volume(self, volume: Record) -> None:
        """Drop a deleted volume's quota rules too."""
        super().forget_volume(volume)
        for key in [k for k, r in self.state["quota_rules"].items() if r["volume"]["uuid"] == volume["uuid"]]:
            del self.state["quota_rules"][key]
