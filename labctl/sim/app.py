"""The simulator application: auth, routing, faults, async-job answers, request log and persistence."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from labctl.sim.control import ControlApi
from labctl.sim.exceptions import ApiNotFound, MethodNotAllowed, NotAuthorized, OntapApiError
from labctl.sim.faults import Faults
from labctl.sim.models import OntapBackend
from labctl.sim.query import as_bool, as_int, expand_body
from labctl.sim.responses import PendingJob, Request, Response, job_link
from labctl.sim.responses_more import MoreResponses
from labctl.sim.schema import schema_for, warm
from labctl.sim.strict import check_body, check_query
from labctl.sim.urls import API, API_ROUTES, CONTROL, resolve, template_of

MAX_RETURN_TIMEOUT = 120


def plain_json(accept: str) -> bool:
    """`Accept: application/json` without HAL: ONTAP then sends no links but `_links.next`."""
    return "application/json" in accept and "hal+json" not in accept


def strip_links(body: Any, top: bool = True) -> Any:
    """Drop every `_links` except the collection's `next` link and job links (clients poll those)."""
    if isinstance(body, list):
        return [strip_links(item, False) for item in body]
    if not isinstance(body, dict):
        return body
    out = {k: v if k in ("job", "jobs") else strip_links(v, False) for k, v in body.items() if k != "_links"}
    if top and "next" in body.get("_links", {}):
        out["_links"] = {"next": body["_links"]["next"]}
    return out


class DropConnection(Exception):
    """Raised to make the server reset the connection without answering."""


class SimApp:
    """Turns one HTTP request into a `Response` (or `DropConnection`); safe to call from many threads."""

    def __init__(self, backend: OntapBackend, username: str, password: str) -> None:
        self.backend = backend
        self.username = username
        self.password = password
        self.faults = Faults()
        self.responses = MoreResponses(backend)
        self.control = ControlApi(self)
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._epoch = 0  # bumped by reset: a request delayed across a reset never touches the new state
        warm([template for template, _ in API_ROUTES])  # the API's field sets, derived once from the SDK

    # log and reset ----------------------------------------------------------------------------------------
    def request_log(self) -> list[dict[str, Any]]:
        """A copy of the `/api` call log, oldest first."""
        with self._log_lock:
            return [dict(e) for e in self._log]

    def clear_log(self) -> None:
        """Forget the logged calls."""
        with self._log_lock:
            self._log.clear()

    def reset(self) -> None:
        """Seeded state, no faults, empty log."""
        self._epoch += 1
        self.backend.reset()
        self.faults.clear()
        self.clear_log()

    def _record(self, req: Request, status: int, query: str, body: dict[str, Any]) -> None:
        """Log one `/api` call: method, path, decoded query, status (0: dropped), body as sent."""
        with self._log_lock:
            self._log.append({"method": req.method, "path": req.path, "query": query, "status": status,
                              "body": body or None, "time": time.time()})

    # dispatch ---------------------------------------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        """Whether an `Authorization: Basic …` header carries the right credentials."""
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        same_user = hmac.compare_digest(user.encode(), self.username.encode())
        return same_user & hmac.compare_digest(password.encode(), self.password.encode())

    def handle(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> Response:
        """Answer one request; raises DropConnection for an injected connection reset."""
        split = urlsplit(target)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        req = Request(method, path, target, query, {}, headers.get("accept", "*/*"))
        sent: dict[str, Any] = {}
        is_api = path == "/api" or path.startswith("/api/")
        try:
            if not self.authorized(headers.get("authorization")):
                raise NotAuthorized()
            sent = req.body = self._parse_body(raw_body)
            if not is_api:
                return self._control(req)
            req.body = expand_body(sent)
            response = self._api(req)
        except OntapApiError as exc:
            response = self.error(exc)
        except DropConnection:
            self._record(req, 0, unquote(split.query), sent)
            raise
        if is_api:
            self._record(req, response.status, unquote(split.query), sent)
            if plain_json(req.accept) and response.body:
                response.body = strip_links(response.body)
                response.headers["Content-Type"] = "application/json"
        return response

    @staticmethod
    def error(exc: OntapApiError) -> Response:
        """The HTTP answer for an ONTAP error (401s add a Basic challenge)."""
        headers = {"WWW-Authenticate": 'Basic realm="ONTAP"'} if exc.status == 401 else {}
        return Response(exc.status, exc.body(), headers)

    @staticmethod
    def _parse_body(raw: bytes) -> dict[str, Any]:
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise OntapApiError(f"Invalid JSON input: {exc}", code="2") from exc
        if not isinstance(body, dict):
            raise OntapApiError("The request body must be a JSON object.", code="2")
        return body

    def _control(self, req: Request) -> Response:
        found = resolve(req.path, CONTROL)
        if found is None:
            raise ApiNotFound()
        methods, params = found
        if req.method not in methods:
            raise MethodNotAllowed(req.method)
        try:
            return getattr(self.control, methods[req.method])(req, **params)
        except (TypeError, ValueError) as exc:
            raise OntapApiError(f"Invalid request: {exc}", code="2") from exc

    def _api(self, req: Request) -> Response:
        fault = self.faults.take(req.method, req.path)
        if fault is not None:
            if fault.delay:
                epoch = self._epoch
                time.sleep(fault.delay)
                if epoch != self._epoch:  # the cluster was reset meanwhile: this call belongs to the old one
                    raise DropConnection()
            if fault.action == "reset":
                raise DropConnection()
            if fault.action == "error":
                raise fault.error()
        found = resolve(req.path, API)
        if found is None:
            raise ApiNotFound()
        methods, params = found
        if req.method not in methods:
            raise MethodNotAllowed(req.method)
        self._check_against_schema(req)
        job_fault = self.faults.take(req.method, req.path, job=True)
        backend = self.backend
        with backend.lock:
            backend.tick()
            if job_fault is not None:
                code = job_fault.code if job_fault.code != "0" else "460770"
                backend.pending_job_failure = OntapApiError(job_fault.message, code=code)
            try:
                result = getattr(self.responses, methods[req.method])(req, **params)
            finally:
                if job_fault is not None and backend.pending_job_failure is not None:
                    self.faults.unfire(job_fault)
                backend.pending_job_failure = None
        if isinstance(result, PendingJob):
            result = self._job_answer(req, result)
        backend.save()
        return result

    @staticmethod
    def _check_against_schema(req: Request) -> None:
        """ONTAP's strictness: query arguments, `fields=` and body fields/types checked against the API's
        schema (CLI passthrough has none); the body is converted to ONTAP's stored types."""
        template = template_of(req.path)
        schema = schema_for(template) if template else None
        if schema is None:
            return
        req.shorthands = check_query(schema, req.query)
        if req.method in ("POST", "PATCH") and req.body:
            req.body = check_body(schema, req.body)

    def _job_answer(self, req: Request, pending: PendingJob) -> Response:
        """201/200 with the job link when it succeeds within `return_timeout`, its error (400) when it fails
        within it, else 202."""
        asked = as_int(req.query.get("return_timeout", "0"), "return_timeout")
        timeout = min(max(asked, 0), MAX_RETURN_TIMEOUT)
        with self.backend.lock:
            wait = self.backend.job_wait_s(pending.job)
        if timeout and wait is not None and 0 < wait <= timeout:
            time.sleep(wait)
        with self.backend.lock:
            self.backend.tick()
            done = self.backend.job_done(pending.job)
            record = dict(self.backend.state["jobs"].get(pending.job, {}))
        headers = {"Location": pending.location} if pending.location else {}
        if timeout and done and record.get("state") == "failure":  # ONTAP answers the job's error itself
            error = record.get("error") or {"message": record.get("message", ""),
                                            "code": str(record.get("code"))}
            return Response(400, {"error": error, **job_link(pending.job)})
        status = pending.done_status if timeout and done else 202
        body = job_link(pending.job)
        if pending.record is not None and as_bool(req.query.get("return_records", "false"), "return_records"):
            body = {"num_records": 1, "records": [pending.record], **body}
        return Response(status, body, headers)
