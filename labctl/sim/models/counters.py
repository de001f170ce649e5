"""`statistics` (raw counters) and `metric` (rates) in the shape the API's schema gives each resource.

The shape comes from the SDK schema: every scalar of the object, and each of its `iops*`, `throughput*`,
`latency*` and `processor_utilization*` groups. Values are zeros here; real I/O drives them in a later change.
"""

from __future__ import annotations

from typing import Any

from labctl.sim.schema import ApiField, fields_of, schema_for

GROUPS = ("iops", "throughput", "latency", "processor_utilization")
METRIC_DURATION = "PT15S"


def _zero(name: str, field: ApiField, now: str) -> Any:
    if name == "status":
        return "ok"
    if name == "timestamp":
        return now
    if name == "duration":
        return METRIC_DURATION
    return {"integer": 0, "number": 0, "boolean": False}.get(field.kind, "")


def _shape(fields: dict[str, ApiField], now: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in fields.items():
        if name.startswith("_") or field.many:
            continue
        if field.kind != "object":
            out[name] = _zero(name, field, now)
        elif name.startswith(GROUPS):
            out[name] = {k: _zero(k, f, now) for k, f in field.children().items() if f.kind != "object"}
    return out


def add_counters(record: dict[str, Any], template: str, now: str) -> dict[str, Any]:
    """Put `statistics` and `metric` (zeros, status ok, `timestamp` now) on a rendered record, as far as the
    resource's schema has them; returns the record."""
    schema = schema_for(template)
    fields = fields_of(schema) if schema is not None else {}
    for key in ("statistics", "metric"):
        field = fields.get(key)
        if field is not None and field.nested is not None:
            record[key] = _shape(field.children(), now)
    return record
