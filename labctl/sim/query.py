"""ONTAP REST conventions that do not depend on a resource: bodies, `fields=`, query filters, sizes."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from labctl.sim.exceptions import InvalidValue

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?B?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


def expand_body(body: dict[str, Any]) -> dict[str, Any]:
    """Expand dotted keys (`"svm.name": x`) into nested objects and merge them with nested ones."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if isinstance(value, dict):
            value = expand_body(value)
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        last = parts[-1]
        if isinstance(value, dict) and isinstance(node.get(last), dict):
            deep_merge(node[last], value)
        else:
            node[last] = value
    return out


def deep_merge(dst: dict[str, Any], src: dict[str, Any]) -> dict[str, Any]:
    """Merge `src` into `dst` recursively (lists and scalars replace); returns `dst`."""
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            deep_merge(dst[key], value)
        else:
            dst[key] = value
    return dst


def as_bool(value: Any, field: str) -> bool:
    """Coerce a JSON or string boolean (`"true"`, `"False"`); raises InvalidValue otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidValue(field, value)


def as_int(value: Any, field: str) -> int:
    """Coerce an integer or a numeric string; raises InvalidValue otherwise."""
    if isinstance(value, bool):
        raise InvalidValue(field, value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise InvalidValue(field, value)


def as_size(value: Any, field: str = "size") -> int:
    """Bytes from an integer or a string with a KB/MB/GB/TB/PB suffix (powers of 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(float(match.group(1)) * _UNITS[match.group(2).upper()[:1]])
    raise InvalidValue(field, value)


def ref_name(value: Any) -> str | None:
    """The name of a reference given as `"x"` or `{"name": "x"}`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("name")
    return None


def parse_fields(raw: str | None) -> list[str] | None:
    """`fields=a,b.c,` → `["a", "b.c"]`; None when absent."""
    if raw is None:
        return None
    return [f.strip() for f in raw.split(",") if f.strip()]


def pick(record: Any, path: list[str]) -> Any:
    """The part of `record` at dotted `path` (`x.*` = all of x), shaped like the record; `...` when absent."""
    if not path or path == ["*"] or path == ["**"]:
        return record
    if isinstance(record, list):
        items = [pick(item, path) for item in record]
        return [item for item in items if item is not ...]
    if not isinstance(record, dict) or path[0] not in record:
        return ...
    inner = pick(record[path[0]], path[1:])
    return ... if inner is ... else {path[0]: inner}


def merge_picked(dst: Any, src: Any) -> Any:
    """Merge two results of `pick` on the same record."""
    if isinstance(dst, dict) and isinstance(src, dict):
        for key, value in src.items():
            dst[key] = merge_picked(dst[key], value) if key in dst else value
        return dst
    if isinstance(dst, list) and isinstance(src, list) and len(dst) == len(src):
        return [merge_picked(a, b) for a, b in zip(dst, src, strict=True)]
    return src


def select(record: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """Only the dotted `paths` of `record` (nested shape kept)."""
    out: dict[str, Any] = {}
    for path in paths:
        part = pick(record, path.split("."))
        if part is not ... and isinstance(part, dict):
            out = merge_picked(out, part)
    return out


def values_at(record: Any, path: list[str]) -> list[Any]:
    """Every scalar at dotted `path`, flattening lists on the way."""
    if isinstance(record, list):
        return [v for item in record for v in values_at(item, path)]
    if not path:
        return [record]
    if not isinstance(record, dict) or path[0] not in record:
        return []
    return values_at(record[path[0]], path[1:])


def _number(text: str) -> float:
    """A query number: `12`, `1.5` or a size such as `2GB`; raises ValueError."""
    match = _SIZE.match(text)
    if match and match.group(2):
        return float(match.group(1)) * _UNITS[match.group(2).upper()[:1]]
    return float(text)


def _compare(actual: Any, op: str, wanted: str) -> bool:
    try:
        a: Any = float(actual) if not isinstance(actual, bool) else str(actual).lower()
        w: Any = _number(wanted)
    except (TypeError, ValueError):
        a, w = str(actual), wanted
    if type(a) is not type(w):
        a, w = str(actual), wanted
    return {"<": a < w, ">": a > w, "<=": a <= w, ">=": a >= w}[op]


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _term_matches(values: list[Any], term: str) -> bool:
    if term.startswith("!"):
        return not _term_matches(values, term[1:])
    if len(term) > 1 and term[0] == term[-1] == '"':  # a quoted value matches exactly (no wildcards)
        return any(_text(v) == term[1:-1] for v in values)
    if term == "null":
        return not values or all(v is None or v == "" for v in values)
    for op in ("<=", ">=", "<", ">"):
        if term.startswith(op):
            return any(_compare(v, op, term[len(op):]) for v in values)
    if ".." in term:
        low, high = term.split("..", 1)
        return any(_compare(v, ">=", low) and _compare(v, "<=", high) for v in values)
    if "*" in term:
        pattern = term.replace("[", "[[]").replace("?", "[?]")
        return any(fnmatch.fnmatchcase(_text(v), pattern) for v in values)
    return any(_text(v).lower() == term.lower() if isinstance(v, bool) else _text(v) == term for v in values)


def matches(record: dict[str, Any], field: str, expression: str) -> bool:
    """ONTAP query semantics: `a|b` (or), `!x` (not), `*` wildcard, `<`/`>`/`<=`/`>=`, `lo..hi`, `null`."""
    values = values_at(record, field.split("."))
    return any(_term_matches(values, term) for term in expression.split("|"))
