"""A scoped SDK session to the lab's cluster (`with ontap_session(cfg, console) as ontap:`), the cluster
check that fails closed on what labctl does not support, and async-job waiting with a progress display."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from netapp_ontap import HostConnection
from netapp_ontap.resource import Resource
from netapp_ontap.resources import Cluster, Job, Svm
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from labctl.config.lab import LabConfig
from labctl.errors import ConfigError, OntapError
from labctl.ontap.rest import CODE_FIXES, RetryPolicy, Target, call

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R", bound=Resource)

MIN_VERSION = (9, 11)  # REST exposes transport.tcp_max_transfer_size from 9.11 on


@dataclass(frozen=True)
class ClusterInfo:
    """What the cluster check learned."""

    name: str
    version: str
    generation: int
    major: int
    minor: int
    svm_uuid: str


@dataclass
class Ontap:
    """An open session: the connection plus retry policy, the console and what the cluster check learned."""

    cfg: LabConfig
    conn: HostConnection
    console: Console
    policy: RetryPolicy
    target: Target
    cluster: ClusterInfo | None = None
    _memo: dict[str, Any] = field(default_factory=dict)

    def memo(self, key: str, fn: Callable[[], T]) -> T:
        """`fn()` once per session: for facts that do not change while labctl runs (nodes, aggregates)."""
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    def call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        recover: Callable[[], Any] | None = None,
        gone_ok: bool = False,
        duplicate_found: bool = False,
    ) -> T:
        """Run one SDK call with retries and error mapping (see `labctl.ontap.rest.call`)."""
        return call(
            what,
            fn,
            policy=self.policy,
            target=self.target,
            recover=recover,
            gone_ok=gone_ok,
            duplicate_found=duplicate_found,
        )

    def progress(self, what: str) -> contextlib.AbstractContextManager[Callable[[str], None]]:
        """A progress display (spinner, job state, elapsed time) on a terminal; silent otherwise."""
        return _progress(self.console, what)

    def wait_job(self, response: Any, what: str, tick: Callable[[str], None] | None = None) -> None:
        """Follow the async job of `response` (if any) to its end, showing progress on a terminal.

        Raises:
            OntapError: the job failed, or is still running after labctl_ontap_job_timeout seconds.
        """
        body = _json(response)
        job = body.get("job") if isinstance(body, dict) else None
        if not isinstance(job, dict) or not job.get("uuid"):
            return
        uuid = str(job["uuid"])
        deadline = time.monotonic() + self.cfg.ontap.job_timeout
        interval = 0.1
        with contextlib.nullcontext(tick) if tick else _progress(self.console, what) as show:
            while True:
                state = self.call(
                    f"follow the job of: {what}", lambda: _fetch(Job(uuid=uuid), "state,message,code")
                )
                status = getattr(state, "state", None)
                message = getattr(state, "message", "") or ""
                show(status or "?")
                if status == "success":
                    return
                if status in ("failure", "cancelled", "expired"):
                    code = str(getattr(state, "code", "") or "") or None
                    raise OntapError(
                        f"cannot {what}: the ONTAP job {uuid} ended in {status}: {message}"
                        + (f" (code {code})" if code else ""),
                        code=code,
                        fix=CODE_FIXES.get(code or "", "fix what ONTAP reports, then rerun"),
                    )
                if time.monotonic() >= deadline:
                    raise OntapError(
                        f"{what}: job {uuid} still {status} after {self.cfg.ontap.job_timeout} s",
                        where="labctl_ontap_job_timeout",
                        fix="rerun later (labctl picks up the result) or raise labctl_ontap_job_timeout",
                    )
                time.sleep(interval)
                interval = min(interval * 2, 2.0)


def _fetch(resource: R, fields: str) -> R:
    """GET one resource in place and return it (the SDK's `get` returns the HTTP response)."""
    resource.get(fields=fields)
    return resource


def _json(response: Any) -> Any:
    http = getattr(response, "http_response", None)
    try:
        return http.json() if http is not None and http.content else {}
    except ValueError:
        return {}


@contextlib.contextmanager
def _progress(console: Console, what: str) -> Iterator[Callable[[str], None]]:
    if not console.is_terminal:
        yield lambda state: None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("[dim]{task.fields[state]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(what, state="queued")
        yield lambda state: progress.update(task, state=state)


@contextlib.contextmanager
def ontap_session(cfg: LabConfig, console: Console, *, check: bool = True) -> Iterator[Ontap]:
    """Open a connection scoped to the block (never the SDK's global), then check the cluster.

    Raises:
        ConfigError: bad credentials or TLS trust (exit 2).
        OntapError: the cluster is unreachable, unsupported, or the SVM is missing or unusable.
    """
    o = cfg.ontap
    if o.password is None:
        raise ConfigError(
            "the ONTAP password was not resolved", fix="load the config with resolve_secrets=True"
        )
    if o.insecure_skip_verify:
        log.warning(
            "TLS verification of ONTAP at %s is OFF (labctl_ontap_insecure_skip_verify: true): "
            "anyone on the path can read the password",
            o.endpoint,
        )
        console.print(f"[bold yellow]WARNING:[/] TLS verification of ONTAP at {o.endpoint} is OFF")
    conn = HostConnection(
        o.host,
        port=o.port,
        username=o.username,
        password=o.password.get_secret_value(),
        verify=str(o.ca_file) if o.ca_file else False,
        poll_timeout=o.job_timeout,
        poll_interval=1,
        protocol_timeouts=(min(10.0, o.timeout), o.timeout),
    )
    # requests lets $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE override a session's `verify`; the inventory's
    # CA file must win, so the session ignores the environment (this also skips proxy variables).
    conn.session.trust_env = False
    target = Target(
        endpoint=o.endpoint,
        username=o.username,
        credentials_where=f"{o.password_source.where}: {o.password_source.key}",
        tls_where=cfg.where("labctl_ontap_ca_file"),
    )
    ontap = Ontap(
        cfg=cfg, conn=conn, console=console, policy=RetryPolicy(o.retries, o.retry_backoff), target=target
    )
    with conn:
        try:
            if check:
                ontap.cluster = check_cluster(ontap)
            yield ontap
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # an answer without a field labctl reads, or with the wrong type (the SDK says "… has not been
            # set" for a missing field): report it as such, with the traceback in labctl.log
            log.debug("unexpected answer from ONTAP", exc_info=True)
            raise OntapError(
                f"an answer of {o.endpoint} could not be understood ({type(exc).__name__}: {exc})",
                fix="check that labctl_ontap_host and labctl_ontap_port name the cluster management "
                "interface; if its answers are well-formed this is a labctl bug: labctl.log in the state "
                "dir has the traceback",
            ) from exc


def check_cluster(ontap: Ontap) -> ClusterInfo:
    """Version, personality, credentials and the SVM: fail closed where labctl cannot do its job.

    Raises:
        OntapError / ConfigError: with what to do.
    """
    cfg = ontap.cfg
    cluster = ontap.call("read the cluster version", lambda: _fetch(Cluster(), "*"))
    version = getattr(cluster, "version", None)
    gen, major, minor = (int(getattr(version, k, 0) or 0) for k in ("generation", "major", "minor"))
    full = str(getattr(version, "full", f"{gen}.{major}.{minor}"))
    if (gen, major) < MIN_VERSION:
        raise OntapError(
            f"ONTAP {gen}.{major}.{minor} is not supported: labctl needs {MIN_VERSION[0]}."
            f"{MIN_VERSION[1]} or later (REST control of the NFS TCP transfer size)",
            fix="upgrade the cluster, or set the NFS options by hand and use a newer release",
        )
    if getattr(cluster, "san_optimized", False):
        raise OntapError(
            "this cluster is SAN-optimized (ASA personality): it does not serve NFS",
            fix="use a unified ONTAP cluster (AFF/FAS)",
        )
    if getattr(cluster, "disaggregated", False):
        raise OntapError(
            "this cluster uses disaggregated storage (AFX personality): FlexGroups there are placed "
            "by ONTAP, not by aggregates × constituents, which labctl does not support yet",
            fix="use a unified ONTAP cluster (AFF/FAS)",
        )
    svms = ontap.call(
        f"look up SVM {cfg.svm}", lambda: list(Svm.get_collection(name=cfg.svm, fields="uuid,name,state,nfs"))
    )
    if not svms:
        raise OntapError(
            f"SVM {cfg.svm!r} does not exist on cluster {getattr(cluster, 'name', '?')}",
            where=cfg.where("labctl_svm"),
            fix="create the SVM (vserver create) or set labctl_svm to an existing one",
        )
    svm = svms[0]
    if getattr(svm, "state", "running") != "running":
        raise OntapError(f"SVM {cfg.svm!r} is {svm.state}", fix=f"start it: vserver start -vserver {cfg.svm}")
    nfs = getattr(svm, "nfs", None)
    if nfs is not None and getattr(nfs, "allowed", True) is False:
        raise OntapError(
            f"NFS is not allowed on SVM {cfg.svm!r}",
            fix=f"vserver add-protocols -vserver {cfg.svm} -protocols nfs",
        )
    log.info("ONTAP %s (%s), SVM %s", full, getattr(cluster, "name", "?"), cfg.svm)
    return ClusterInfo(
        name=str(getattr(cluster, "name", "")),
        version=full,
        generation=gen,
        major=major,
        minor=minor,
        svm_uuid=str(svm.uuid),
    )
