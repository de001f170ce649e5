"""`statistics` (raw counters) and `metric` (rates) in the shape the API's schema gives each resource.

The shape comes from the SDK schema: every scalar of the object, and each of its `iops*`, `throughput*`,
`latency*` and `processor_utilization*` groups (per protocol version where the schema nests them, as the NFS
service's `v3`/`v4`/`v41`). Values are zeros unless the caller passes real ones
(`labctl.sim.models.io_stats`), which fill the shape where it has their keys.
"""

from __future__ import annotations

from typing import Any

from labctl.sim.schema import ApiField, fields_of, schema_for

GROUPS = ("iops", "throughput", "latency", "processor_utilization")
VERSIONS = ("v3", "v4", "v41")
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
        elif name in VERSIONS:
            out[name] = _shape(field.children(), now)
    return out


def _fill(shape: dict[str, Any], values: dict[str, Any]) -> None:
    """Put `values` into `shape` where the shape has the key (the schema decides what is shown)."""
    for key, value in values.items():
        if key not in shape:
            continue
        if isinstance(shape[key], dict) and isinstance(value, dict):
            _fill(shape[key], value)
        elif not isinstance(shape[key], dict):
            shape[key] = value


def add_counters(record: dict[str, Any], template: str, now: str,
                 values: dict[str, Any] | None = None) -> dict[str, Any]:
    """Put `statistics` and `metric` on a rendered record, as far as the resource's schema has them: `values`
    (`{"statistics": …, "metric": …}`) where given, else zeros, status ok, `timestamp` now; returns the
    record."""
    schema = schema_for(template)
    fields = fields_of(schema) if schema is not None else {}
    for key in ("statistics", "metric"):
        field = fields.get(key)
        if field is not None and field.nested is not None:
            record[key] = _shape(field.children(), now)
            _fill(record[key], (values or {}).get(key, {}))
    return record
