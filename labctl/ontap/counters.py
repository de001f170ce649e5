"""Read ONTAP's raw performance counters (`statistics`) of the lab's objects through labctl's TLS-verified
session: the FlexGroup, its constituents, the nodes, the aggregates and the IP interfaces.

One `read_counters` call is one poll: each query is a single GET with a bounded timeout and no retries (the
next poll is the retry). A query ONTAP refuses for lack of privilege (HTTP 403, code 6) is reported as
`denied`, so the caller can skip it from then on; the least-privilege role is in docs/ontap-counters.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

from labctl.ontap.session import Ontap

PERMISSION_CODE = "6"  # "not authorized for that command" (HTTP 403)
DROPPED = ("_links",)


@dataclass(frozen=True)
class Query:
    """One collection GET of a poll."""

    kind: str
    path: str
    params: dict[str, str]


def queries(flexgroup: str) -> list[Query]:
    """The poll's queries, in ONTAP's documented shapes (endpoints and fields of the REST API)."""
    return [
        Query("flexgroup", "/api/storage/volumes", {"name": flexgroup, "fields": "statistics,metric"}),
        Query(
            "constituents",
            "/api/storage/volumes",
            {"is_constituent": "true", "name": f"{flexgroup}__*", "fields": "statistics,aggregates,name"},
        ),
        Query("nodes", "/api/cluster/nodes", {"fields": "statistics"}),
        Query("aggregates", "/api/storage/aggregates", {"fields": "statistics,node"}),
        Query("lifs", "/api/network/ip/interfaces", {"fields": "statistics,location"}),
    ]


@dataclass
class PollResult:
    """What one poll read: records per kind, and per kind why it has none (error or permission)."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    denied: dict[str, str] = field(default_factory=dict)


def _clean(record: Any) -> dict[str, Any]:
    """A record without its hypermedia links (at every level)."""
    if not isinstance(record, dict):
        return {}
    return {k: (_clean(v) if isinstance(v, dict) else v) for k, v in record.items() if k not in DROPPED}


def _error_of(response: requests.Response) -> tuple[str | None, str]:
    """ONTAP's error code and message from a failed answer."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return (str(error["code"]) if "code" in error else None), str(error.get("message") or "")
    return None, (response.text or "")[:200]


def poll_session(ontap: Ontap) -> requests.Session:
    """A session with the SDK session's credentials and TLS trust but without its retries: a poll asks each
    query once (the SDK's adapter would retry a timed-out read several times)."""
    sdk = ontap.conn.session
    session = requests.Session()
    session.auth, session.verify, session.cert = sdk.auth, sdk.verify, sdk.cert
    session.headers.update(sdk.headers)
    session.trust_env = False  # the inventory's CA file wins over $REQUESTS_CA_BUNDLE, as in the SDK session
    return session


def read_counters(ontap: Ontap, session: requests.Session, kinds: list[Query],
                  timeout_s: float) -> PollResult:
    """GET each query once (at most `timeout_s` to connect and `timeout_s` to read); never raises for a
    failed query: its reason lands in `errors`, or in `denied` for a missing privilege."""
    result = PollResult()
    for q in kinds:
        try:
            response = session.get(
                ontap.conn.origin + q.path, params=q.params, timeout=(min(timeout_s, 10.0), timeout_s)
            )
        except requests.exceptions.SSLError as exc:
            result.errors[q.kind] = f"TLS verification failed: {str(exc)[:200]}"
            continue
        except requests.exceptions.Timeout:
            result.errors[q.kind] = f"no answer within {timeout_s:g} s"
            continue
        except requests.exceptions.RequestException as exc:
            result.errors[q.kind] = f"{type(exc).__name__}: {str(exc)[:200]}"
            continue
        if response.status_code == 403:
            code, message = _error_of(response)
            if code in (PERMISSION_CODE, None):
                result.denied[q.kind] = (
                    f"GET {q.path}: HTTP 403 (code {code or '?'}): {message or 'permission denied'}"
                )
                continue
        if response.status_code != 200:
            code, message = _error_of(response)
            result.errors[q.kind] = f"GET {q.path}: HTTP {response.status_code} (code {code}): {message}"
            continue
        try:
            body = response.json()
        except ValueError:
            result.errors[q.kind] = f"GET {q.path}: the answer is not JSON"
            continue
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            result.errors[q.kind] = f"GET {q.path}: the answer has no records"
            continue
        result.records[q.kind] = [_clean(r) for r in records]
    return result
