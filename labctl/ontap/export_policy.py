"""The export policy and its one rule: the GPU hosts (only) may mount, with the configured flavors."""

from __future__ import annotations

from typing import Any

from netapp_ontap.resources import ExportPolicy, ExportRule

from labctl.ontap.changes import ABSENT, CREATE, DELETE, KEEP, MODIFY, UNCHANGED, Change
from labctl.ontap.rest import changed
from labctl.ontap.session import Ontap
from labctl.state import INTENT, Ledger

POLICY, RULE = "export policy", "export rule"
RULE_FIELDS = "index,clients,ro_rule,rw_rule,superuser,protocols"


def policy_key(svm: str, name: str) -> str:
    """Ledger key of an export policy."""
    return f"export_policy:{svm}/{name}"


def rule_key(svm: str, name: str) -> str:
    """Ledger key of labctl's rule in an export policy."""
    return f"export_rule:{svm}/{name}"


def find_policy(ontap: Ontap, name: str | None = None) -> int | None:
    """The id of the named policy in the SVM, or None."""
    svm, name = ontap.cfg.svm, name or ontap.cfg.export.policy
    found = ontap.call(
        f"look up export policy {name}",
        lambda: list(ExportPolicy.get_collection(name=name, fields="id,name", **{"svm.name": svm})),
    )
    return int(found[0].id) if found else None


def desired_rule(ontap: Ontap) -> dict[str, Any]:
    """The rule labctl wants, in a comparable form."""
    e = ontap.cfg.export
    return {
        "clients": sorted(e.clients),
        "ro_rule": sorted(e.ro_rule),
        "rw_rule": sorted(e.rw_rule),
        "superuser": sorted(e.superuser),
        "protocols": ["nfs"],
    }


def _rule_form(rule: Any) -> dict[str, Any]:
    d = rule.to_dict()
    return {
        "clients": sorted(c.get("match", "") for c in d.get("clients", [])),
        "ro_rule": sorted(d.get("ro_rule", [])),
        "rw_rule": sorted(d.get("rw_rule", [])),
        "superuser": sorted(d.get("superuser", [])),
        "protocols": sorted(d.get("protocols", [])),
    }


def rules(ontap: Ontap, policy_id: int) -> dict[int, dict[str, Any]]:
    """The policy's rules by index, in the comparable form of `desired_rule`."""
    found = ontap.call(
        "read export rules", lambda: list(ExportRule.get_collection(policy_id, fields=RULE_FIELDS))
    )
    return {int(r.index): _rule_form(r) for r in found}


def _body(rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "clients": [{"match": c} for c in rule["clients"]],
        "ro_rule": rule["ro_rule"],
        "rw_rule": rule["rw_rule"],
        "superuser": rule["superuser"],
        "protocols": rule["protocols"],
    }


def owned_index(present: dict[int, dict[str, Any]], entry: dict[str, Any] | None) -> int | None:
    """The index of labctl's rule among `present`: the rule whose content (clients, protocols, flavours)
    is the one the ledger recorded, at the recorded index first. Never a rule by its index alone: after
    a delete, ONTAP gives the next rule added (anyone's) a free index, possibly labctl's old one."""
    content = (entry or {}).get("desired")
    if not content:
        return None
    recorded = (entry or {}).get("index")
    candidates = sorted(present, key=lambda i: (recorded is None or i != int(recorded), i))
    return next((i for i in candidates if present[i] == content), None)


def foreign_at_index(present: dict[int, dict[str, Any]], entry: dict[str, Any] | None) -> int | None:
    """The recorded index when it now holds a rule that is not labctl's (someone else's), else None."""
    recorded = (entry or {}).get("index")
    if recorded is None or int(recorded) not in present or owned_index(present, entry) == int(recorded):
        return None
    return int(recorded)


def _not_ours(index: int | None) -> str:
    return f"rule {index} is not labctl's: left alone" if index is not None else ""


def plan_export(ontap: Ontap, ledger: Ledger) -> tuple[list[Change], int | None, int | None]:
    """Changes for the policy and its rule, plus the policy id and the index of the rule to modify.

    A rule is labctl's only by its content: a rule whose content labctl did not record is never
    modified; labctl adds its own rule again instead."""
    svm, name = ontap.cfg.svm, ontap.cfg.export.policy
    want = desired_rule(ontap)
    policy_id = find_policy(ontap)
    new_rule = {k: (None, v) for k, v in want.items()}
    if policy_id is None:
        return [Change(POLICY, name, CREATE), Change(RULE, f"{name}#new", CREATE, new_rule)], None, None
    present = rules(ontap, policy_id)
    owned = ledger.get(rule_key(svm, name))
    policy_change = Change(POLICY, name, UNCHANGED)
    for index, rule in present.items():
        if rule == want:
            return [policy_change, Change(RULE, f"{name}#{index}", UNCHANGED)], policy_id, None
    index = owned_index(present, owned)
    if index is not None:
        fields = {k: (present[index].get(k), v) for k, v in want.items() if present[index].get(k) != v}
        return [policy_change, Change(RULE, f"{name}#{index}", MODIFY, fields)], policy_id, index
    note = _not_ours(foreign_at_index(present, owned))
    return [policy_change, Change(RULE, f"{name}#new", CREATE, new_rule, note=note)], policy_id, None


def ensure_export(ontap: Ontap, ledger: Ledger) -> list[Change]:
    """Create the policy and rule, or fix labctl's rule, so that exactly the configured clients match."""
    svm, name = ontap.cfg.svm, ontap.cfg.export.policy
    pkey, rkey = policy_key(svm, name), rule_key(svm, name)
    changes, policy_id, index = plan_export(ontap, ledger)
    if changes[0].action == CREATE:
        # an intent recorded by an earlier run whose create may land late: its duplicate is that object
        earlier = _pending(ledger, pkey)
        ledger.intent(pkey, kind="export_policy", action="create", name=name)
        ontap.call(
            f"create export policy {name}",
            lambda: ExportPolicy.from_dict({"name": name, "svm": {"name": svm}}).post(poll=True),
            recover=lambda: find_policy(ontap) is not None,
            duplicate_found=earlier,
        )
        policy_id = find_policy(ontap)
        ledger.done(pkey, id=policy_id)
    elif _pending(ledger, pkey):
        ledger.done(pkey, id=policy_id)  # an interrupted run's create had landed
    assert policy_id is not None
    want = desired_rule(ontap)
    rule = changes[1]
    if rule.action == CREATE:
        earlier = _pending(ledger, rkey) and (ledger.get(rkey) or {}).get("desired") == want
        ledger.intent(rkey, kind="export_rule", action="create", name=name, desired=want, policy_id=policy_id)
        ontap.call(
            f"add the export rule to {name}",
            lambda: ExportRule(policy_id, **_body(want)).post(poll=True),
            recover=lambda: _matching_index(ontap, policy_id, want) is not None,
            duplicate_found=earlier,
        )
        ledger.done(rkey, index=_matching_index(ontap, policy_id, want), policy_id=policy_id)
        changes[1] = Change(RULE, f"{name}#{ledger.get(rkey).get('index')}", CREATE, rule.fields, rule.note)
    elif rule.action == MODIFY and index is not None:
        ledger.intent(rkey, kind="export_rule", action="modify", name=name, desired=want)
        ontap.call(
            f"update the export rule of {name}",
            lambda: changed(ExportRule(policy_id, index=index), **_body(want)).patch(poll=True),
        )
        ledger.done(rkey, index=index)
    elif (entry := ledger.get(rkey)) is not None and entry.get("desired") == want:
        # an interrupted run's rule had landed, or labctl's rule is found at another index: record where
        # it is, or teardown could not find it again
        found = _matching_index(ontap, policy_id, want)
        if entry.get("state") == INTENT or found != entry.get("index"):
            ledger.done(rkey, index=found, policy_id=policy_id)
    return changes


def _pending(ledger: Ledger, key: str) -> bool:
    return (ledger.get(key) or {}).get("state") == INTENT


def _matching_index(ontap: Ontap, policy_id: int, want: dict[str, Any]) -> int | None:
    for index, rule in rules(ontap, policy_id).items():
        if rule == want:
            return index
    return None


def remove_export(
    ontap: Ontap, ledger: Ledger, name: str | None = None, *, plan: bool = False
) -> list[Change]:
    """Delete labctl's rule (found by its content, never by index alone) and, if labctl created it, the
    policy `name` (default: the configured one). A rule whose content is not labctl's is left alone, and so
    is a policy labctl created that now holds such rules."""
    svm, name = ontap.cfg.svm, name or ontap.cfg.export.policy
    out: list[Change] = []
    pkey, rkey = policy_key(svm, name), rule_key(svm, name)
    policy_entry, rule_entry = ledger.get(pkey), ledger.get(rkey)
    policy_id = find_policy(ontap, name)
    present = rules(ontap, policy_id) if policy_id is not None else {}
    index = owned_index(present, rule_entry)
    others = sorted(set(present) - {index})
    with_policy = bool(policy_entry and policy_entry.get("created")) and policy_id is not None and not others
    if rule_entry is not None:
        if index is None:
            note = _not_ours(foreign_at_index(present, rule_entry))
            out.append(Change(RULE, f"{name}#{rule_entry.get('index')}", ABSENT, note=note))
        elif with_policy:
            out.append(Change(RULE, f"{name}#{index}", DELETE, note="with its policy"))
        else:
            out.append(Change(RULE, f"{name}#{index}", DELETE))
            if not plan:
                ledger.update(rkey, state="removing", index=index)
                ontap.call(
                    f"delete export rule {index} of {name}",
                    lambda: ExportRule(policy_id, index=index).delete(poll=True),
                    gone_ok=True,
                )
        if not plan and not with_policy:
            ledger.forget(rkey)  # with its policy, the record goes when the policy is gone
    if policy_entry is not None and policy_entry.get("created"):
        if policy_id is None:
            out.append(Change(POLICY, name, ABSENT))
        elif others:
            held = ", ".join(map(str, others))
            note = f"holds rules labctl did not add ({held}): left alone"
            out.append(Change(POLICY, name, KEEP, note=note))
        else:
            out.append(Change(POLICY, name, DELETE))
            if not plan:
                ledger.update(pkey, state="removing")
                ontap.call(
                    f"delete export policy {name}",
                    lambda: ExportPolicy(id=policy_id).delete(poll=True),
                    gone_ok=True,
                )
        if not plan:
            ledger.forget(rkey)
            ledger.forget(pkey)
    elif policy_id is not None and rule_entry is None:
        out.append(Change(POLICY, name, KEEP, note="not created by labctl"))
    return out
