"""Change records: what a plan/ensure/remove step found or did to one ONTAP object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CREATE, MODIFY, UNCHANGED, DELETE, RESTORE, ABSENT, KEEP = (
    "create",
    "modify",
    "unchanged",
    "delete",
    "restore",
    "absent",
    "keep",
)


@dataclass(frozen=True)
class Change:
    """One object's outcome: `fields` maps a field to `(old, new)` for modify/restore."""

    kind: str
    name: str
    action: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    note: str = ""

    @property
    def mutates(self) -> bool:
        """True when applying it changes the cluster."""
        return self.action in (CREATE, MODIFY, DELETE, RESTORE)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "fields": {k: {"old": o, "new": n} for k, (o, n) in self.fields.items()},
            "note": self.note,
        }

    def describe(self) -> str:
        """One line, e.g. `modify NFS service llm-lab: protocol.v41_enabled: False → True`."""
        text = f"{self.action} {self.kind} {self.name}"
        if self.fields:
            text += ": " + "; ".join(f"{k}: {_show(o)} → {_show(n)}" for k, (o, n) in self.fields.items())
        if self.note:
            text += f" ({self.note})"
        return text


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def diff(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The fields whose current value differs from the desired one."""
    return {k: (current.get(k), v) for k, v in desired.items() if current.get(k) != v}
