"""Every SDK call goes through `call`: transient failures (5xx, timeouts, resets) are retried with backoff,
other REST errors become an `OntapError` with ONTAP's message and code and what to do about it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from netapp_ontap.error import NetAppRestError

from labctl.errors import ConfigError, LabctlError, OntapError

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

TRANSIENT_STATUS = {429, 500, 502, 503, 504}

# What to do about the ONTAP error codes this workflow can meet (docs: ontap-rest research, section 4).
CODE_FIXES: dict[str, str] = {
    "2621462": "check labctl_svm: the SVM must exist (labctl does not create SVMs)",
    "917508": "check labctl_flexgroup_aggregates against `storage aggregate show`",
    "917526": "a volume with this name exists: choose another labctl_flexgroup_name",
    "918271": "the export policy is missing; rerun `labctl provision` to recreate it",
    "13107341": "every node needs an aggregate with enough free space for the FlexGroup; lower "
    "labctl_flexgroup_size or add capacity",
    "13107245": "too many constituents for the node: lower labctl_flexgroup_constituents_per_aggregate",
    "917534": "the FlexGroup is too small for its constituents: raise labctl_flexgroup_size",
    "1376963": "the address is in use: pick another address in labctl_data_lifs",
    "1966140": "a LIF with that name exists: pick another name in labctl_data_lifs",
    "1704070": "an identical export rule exists already in that policy",
    "1703945": "the export policy is still used by a volume; unmount/delete the volume first",
    "524546": "the volume is still mounted (junction); labctl unmounts before deleting, rerun teardown",
    "13107405": "an earlier create of this volume is still running: wait for it, then rerun",
    "6": "give the ONTAP user a role that allows this call (docs/lab.md lists labctl's REST endpoints)",
}


def changed(resource: R, **values: Any) -> R:
    """`resource` (built from its keys) with `values` set after construction, so that the SDK's
    `patch()` sends them (it sends the difference from the state the object was built with)."""
    for name, value in values.items():
        setattr(resource, name, value)
    return resource


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried."""

    retries: int = 5
    backoff: float = 1.0
    max_sleep: float = 30.0

    def sleep(self, attempt: int) -> None:
        """Wait before retry `attempt` (1-based): backoff × 2^(attempt-1), capped."""
        time.sleep(min(self.max_sleep, self.backoff * 2 ** (attempt - 1)))


def is_transient(exc: BaseException) -> bool:
    """A 5xx/429 answer, a timeout or a dropped connection: worth retrying."""
    if isinstance(exc, NetAppRestError):
        if exc.status_code is not None:
            return exc.status_code in TRANSIENT_STATUS
        cause = getattr(exc, "cause", None)
        if isinstance(cause, requests.exceptions.SSLError):
            return False
        return isinstance(
            cause,
            requests.exceptions.ConnectionError
            | requests.exceptions.Timeout
            | requests.exceptions.ChunkedEncodingError,
        )
    return isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout)


def error_code(exc: NetAppRestError) -> str | None:
    """ONTAP's error code (a numeric string) from a failed response, if any."""
    body = exc.response_body if exc.status_code is not None else None
    error = (body or {}).get("error") if isinstance(body, dict) else None
    return str(error["code"]) if isinstance(error, dict) and "code" in error else None


def error_message(exc: NetAppRestError) -> str:
    """ONTAP's error message, else the SDK's text."""
    body = exc.response_body if exc.status_code is not None else None
    error = (body or {}).get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(exc)


@dataclass(frozen=True)
class Target:
    """Who we talk to, for messages: endpoint, user, and the inventory keys to blame."""

    endpoint: str = "ONTAP"
    username: str = "admin"
    credentials_where: str = "labctl_ontap_password"
    tls_where: str = "labctl_ontap_ca_file"


def to_labctl_error(exc: BaseException, what: str, target: Target) -> LabctlError:
    """Map an SDK/requests failure of `what` to the error the user sees."""
    status = exc.status_code if isinstance(exc, NetAppRestError) else None
    cause = getattr(exc, "cause", exc)
    if status == 401:
        return ConfigError(
            f"ONTAP at {target.endpoint} rejected the credentials of user {target.username!r}",
            where=target.credentials_where,
            fix="check the password source and labctl_ontap_username, then rerun",
        )
    if isinstance(cause, requests.exceptions.SSLError):
        return ConfigError(
            f"TLS verification of {target.endpoint} failed: {_short(cause)}",
            where=target.tls_where,
            fix=(
                "use the name or address the cluster certificate carries (subject alternative name) as "
                "labctl_ontap_host, or reissue the certificate with it"
                if "match" in str(cause).lower()
                else "point labctl_ontap_ca_file at the CA that signed the cluster certificate"
            ),
        )
    if isinstance(cause, requests.exceptions.JSONDecodeError):
        return unreadable_answer(cause, what, target)
    if status is None and isinstance(cause, requests.exceptions.RequestException):
        return OntapError(
            f"cannot reach ONTAP at {target.endpoint} while trying to {what}: {_short(cause)}",
            fix="check labctl_ontap_host / labctl_ontap_port and that the cluster management LIF "
            "is up; rerun when it answers",
        )
    if isinstance(exc, NetAppRestError) and status is None and "Polling timed out" in str(exc):
        return OntapError(
            f"cannot {what}: the ONTAP job did not finish in time ({_short(exc)})",
            where="labctl_ontap_job_timeout",
            fix="rerun later (labctl picks up the result) or raise labctl_ontap_job_timeout",
        )
    if isinstance(exc, NetAppRestError):
        code = error_code(exc)
        message = error_message(exc)
        suffix = f" (HTTP {status}, code {code})" if status else ""
        fix = CODE_FIXES.get(
            code or "", "fix what ONTAP reports, then rerun: labctl resumes where it stopped"
        )
        return OntapError(f"cannot {what}: ONTAP says: {message}{suffix}", code=code, fix=fix)
    return OntapError(f"cannot {what}: {exc}")


def unreadable_answer(exc: BaseException, what: str, target: Target) -> OntapError:
    """A response labctl's SDK could not parse (not JSON, missing fields, wrong types)."""
    return OntapError(
        f"cannot {what}: the answer of {target.endpoint} could not be understood "
        f"({type(exc).__name__}: {_short(exc)})",
        fix="check that labctl_ontap_host and labctl_ontap_port name the cluster management interface "
        "(not a proxy or another service); labctl.log in the state dir has the details",
    )


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"


def call(
    what: str,
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    target: Target,
    recover: Callable[[], Any] | None = None,
    gone_ok: bool = False,
    duplicate_found: bool = False,
) -> T:
    """Run `fn`, retrying transient failures; before each retry `recover()` may show that the change already
    happened (a POST whose answer was lost) — then its truthy result is returned instead of retrying.
    With `gone_ok` (deletes), a 404 answer means the object is already gone and returns None.
    With `duplicate_found` (a create whose intent an earlier, interrupted run recorded), a 409 "already
    exists" on the first attempt too is that earlier create landing: `recover()` finds it.

    Raises:
        OntapError / ConfigError: a non-transient failure, or transient ones beyond the retry budget.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except LabctlError:
            raise
        except (NetAppRestError, requests.exceptions.RequestException) as exc:
            if gone_ok and isinstance(exc, NetAppRestError) and exc.status_code == 404:
                log.info("%s: already gone", what)
                return None  # type: ignore[return-value]
            if not is_transient(exc) or attempt >= policy.retries:
                # a retried create that now clashes ("already exists") may be the first attempt landing late
                late = attempt or (duplicate_found and getattr(exc, "status_code", None) == 409)
                if late and recover is not None and (found := recover()):
                    return found
                raise to_labctl_error(exc, what, target) from exc
            attempt += 1
            log.warning(
                "%s: transient failure (%s); retry %d of %d", what, _short(exc), attempt, policy.retries
            )
            policy.sleep(attempt)
            if recover is not None:
                found = recover()
                if found:
                    log.info("%s: the earlier attempt took effect; not repeating it", what)
                    return found
        except Exception as exc:  # noqa: BLE001 - the SDK's parsers fail in many ways on a malformed answer
            log.debug("%s: unexpected answer", what, exc_info=True)
            raise unreadable_answer(exc, what, target) from exc
