"""The REST API's own field set, read from the netapp-ontap SDK's marshmallow schemas (the API's definition).

Each served collection maps to the SDK resource whose `_path` is the same; its schema gives every field's
JSON name (`data_key`), type, enum choices and nested schema. Nothing here is a hand-kept list of fields.
"""

from __future__ import annotations

import functools
import importlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netapp_ontap
from marshmallow import Schema
from marshmallow import fields as mfields

_KINDS = {"String": "string", "Size": "integer", "Integer": "integer", "Number": "number", "Float": "number",
          "Boolean": "boolean", "ImpreciseDateTime": "datetime", "DateTime": "datetime", "Nested": "object"}
MAX_DEPTH = 8


@dataclass(frozen=True)
class ApiField:
    """One field of a schema: its kind, whether it is a list, enum choices, and the nested schema."""

    kind: str  # string | integer | number | boolean | datetime | object
    many: bool = False
    choices: tuple[str, ...] = ()
    nested: type[Schema] | None = None

    def children(self) -> dict[str, ApiField]:
        """The fields of an object (empty for scalars)."""
        return fields_of(self.nested) if self.nested is not None else {}

    @property
    def is_reference(self) -> bool:
        """An object known by name and uuid (or id): ONTAP accepts `x=<name>` for `x.name` in queries."""
        keys = set(self.children()) if self.kind == "object" else set()
        return "name" in keys and bool(keys & {"uuid", "id"})


def _choices(field: mfields.Field) -> tuple[str, ...]:
    """Enum choices of an SDK `enum_validation` validator (the list it closes over)."""
    validator = field.validate
    if not callable(validator) or "enum_validation" not in getattr(validator, "__qualname__", ""):
        return ()
    for cell in validator.__closure__ or ():
        if isinstance(cell.cell_contents, list):
            return tuple(str(c).lower() for c in cell.cell_contents)
    return ()


def _api_field(field: mfields.Field) -> ApiField:
    many = isinstance(field, mfields.List)
    inner = field.inner if many else field
    kind = _KINDS.get(type(inner).__name__, "string")
    nested = type(inner.schema) if isinstance(inner, mfields.Nested) else None
    return ApiField(kind, many, _choices(inner), nested)


@functools.cache
def fields_of(schema_cls: type[Schema]) -> dict[str, ApiField]:
    """The fields of one SDK schema by their JSON names (`_links`, `_tags`, `volume-count`, …)."""
    with warnings.catch_warnings():  # the SDK's models trip marshmallow 3's deprecation warnings
        warnings.simplefilter("ignore")
        return {(f.data_key or name): _api_field(f) for name, f in schema_cls().fields.items()}


@functools.cache
def _resource_modules() -> dict[str, str]:
    """Collection path (parameters as `{}`) → SDK resource module, read from each module's `_path`."""
    found: dict[str, str] = {}
    root = Path(netapp_ontap.__file__).parent / "resources"
    for source in sorted(root.glob("*.py")):
        match = re.search(r'^    _path = "([^"]+)"', source.read_text(encoding="utf-8"), re.M)
        if match:
            found.setdefault(re.sub(r"\{[^}]+\}", "{}", match.group(1)), source.stem)
    return found


def collection_of(template: str) -> str:
    """The collection path of a route template: `/api/x/{uuid}` → `/api/x`, parameters as `{}`."""
    path = re.sub(r"\{[^}]+\}", "{}", template)
    return path[:-3] if path.endswith("/{}") else path


@functools.cache
def schema_for(template: str) -> type[Schema] | None:
    """The SDK schema of the resource served at a route template, or None (e.g. CLI passthrough)."""
    module_name = _resource_modules().get(collection_of(template))
    if module_name is None:
        return None
    module = importlib.import_module(f"netapp_ontap.resources.{module_name}")
    for value in vars(module).values():
        schema = getattr(value, "_schema", None)
        if isinstance(value, type) and getattr(value, "_path", None) and schema is not None:
            return schema
    return None


def lookup(schema_cls: type[Schema], dotted: str) -> ApiField | None:
    """The field at a dotted name (`svm.name`, `aggregates.name`, `statistics.iops_raw.read`), or None."""
    current: dict[str, ApiField] = fields_of(schema_cls)
    found: ApiField | None = None
    for part in dotted.split("."):
        found = current.get(part)
        if found is None:
            return None
        current = found.children()
    return found


@functools.cache
def field_set(schema_cls: type[Schema]) -> dict[str, ApiField]:
    """Every dotted field name of a schema with its field (recursive schemas are cut where they repeat)."""
    out: dict[str, ApiField] = {}

    def walk(fields: dict[str, ApiField], prefix: str, seen: tuple[type[Schema], ...]) -> None:
        for name, field in fields.items():
            dotted = f"{prefix}{name}"
            out[dotted] = field
            nested = field.nested
            if nested is not None and nested not in seen and len(seen) < MAX_DEPTH:
                walk(fields_of(nested), f"{dotted}.", (*seen, nested))

    walk(fields_of(schema_cls), "", (schema_cls,))
    return out


def warm(templates: list[str]) -> dict[str, int]:
    """Derive (and cache) the field set of every served collection; returns the number of names of each."""
    counts: dict[str, int] = {}
    for template in templates:
        schema = schema_for(template)
        if schema is not None:
            counts[collection_of(template)] = len(field_set(schema))
    return counts


def value_fits(field: ApiField, value: Any) -> bool:
    """Whether a value as returned by the simulator has the field's JSON type (lists element by element)."""
    if value is None:
        return True
    if field.many:
        return isinstance(value, list) and all(value_fits(ApiField(field.kind, False), v) for v in value)
    checks = {
        "string": lambda v: isinstance(v, str),
        "datetime": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
    }
    return checks[field.kind](value)
