"""ONTAP's strictness, driven by the API schema: query arguments, `fields=` names, body fields and types."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema

from labctl.sim.exceptions import InvalidValue, OntapApiError, UnexpectedArgument
from labctl.sim.query import as_bool, as_size, parse_fields
from labctl.sim.schema import ApiField, fields_of, lookup

# Quota limits ONTAP resets with "-" instead of a number (na_ontap_quotas: "Rest allows reset quota limits
# using '-'").
RESETTABLE = {"space.hard_limit", "space.soft_limit", "files.hard_limit", "files.soft_limit"}
# Query parameters that are not fields: ONTAP's common controls and the per-operation ones served here.
CONTROL_PARAMS = {"fields", "max_records", "return_records", "return_timeout", "order_by", "is_constituent",
                  "force", "sizing_method", "new_index", "privilege_level", "hal_linking",
                  "restore_to.snapshot.name", "restore_to.snapshot.uuid", "interval"}


class InvalidFieldsValue(OntapApiError):
    """An unknown name in `fields=` (400, 262197, target `fields`)."""

    code = "262197"

    def __init__(self, name: str) -> None:
        message = f"The value \"{name}\" is invalid for field \"fields\" (<field,...>)"
        super().__init__(message, target="fields")


def check_query(schema: Schema | type[Schema], query: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """Reject unknown arguments (262179) and unknown `fields=` names (262197).

    Returns the shorthand arguments: `svm=x` → (`svm.name`, `svm.uuid`) for an object known by name.
    """
    schema_cls = schema if isinstance(schema, type) else type(schema)
    shorthands: dict[str, tuple[str, ...]] = {}
    for key in query:
        if key in CONTROL_PARAMS or key.startswith("start."):
            continue
        field = lookup(schema_cls, key)
        if field is None:
            raise UnexpectedArgument(key)
        if field.is_reference:
            keys = fields_of(field.nested) if field.nested else {}
            shorthands[key] = tuple(f"{key}.{k}" for k in ("name", "uuid", "id") if k in keys)
    for name in parse_fields(query.get("fields")) or []:
        base = re.sub(r"\.\*\*?$", "", name)
        if name in ("*", "**") or lookup(schema_cls, base) is not None:
            continue
        raise InvalidFieldsValue(name)
    return shorthands


def check_body(schema_cls: type[Schema], body: dict[str, Any]) -> dict[str, Any]:
    """The body with every field checked against the schema (262179 unknown, 262197 wrong type) and values
    in ONTAP's stored types (integers, booleans)."""
    return _object(fields_of(schema_cls), body, "")


def _object(fields: dict[str, ApiField], body: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in body.items():
        dotted = f"{prefix}{key}"
        field = fields.get(key)
        if field is None:
            raise UnexpectedArgument(dotted)
        out[key] = _value(field, value, dotted)
    return out


def _value(field: ApiField, value: Any, dotted: str) -> Any:
    if value is None:
        return None
    if field.many:
        items = value if isinstance(value, list) else [value]
        one = ApiField(field.kind, False, field.choices, field.nested)
        return [_value(one, item, dotted) for item in items]
    if field.kind == "object":
        if isinstance(value, dict):
            return _object(field.children(), value, f"{dotted}.")
        if isinstance(value, str) and "name" in field.children():
            return value  # `"service_policy": "x"` names the object
        raise InvalidValue(dotted, value)
    return _scalar(field, value, dotted)


def _scalar(field: ApiField, value: Any, dotted: str) -> Any:
    if isinstance(value, dict | list):
        raise InvalidValue(dotted, value)
    if field.kind == "boolean":
        return as_bool(value, dotted)
    if field.kind == "integer":
        if value == "-" and dotted in RESETTABLE:
            return value
        if isinstance(value, bool):
            raise InvalidValue(dotted, value)
        return as_size(value, dotted)
    if field.kind == "number":
        if isinstance(value, bool):
            raise InvalidValue(dotted, value)
        try:
            return value if isinstance(value, int | float) else float(value)
        except ValueError as exc:
            raise InvalidValue(dotted, value) from exc
    if isinstance(value, bool):
        raise InvalidValue(dotted, value)
    if field.choices and str(value).lower() not in field.choices:
        raise InvalidValue(dotted, value)
    return value
