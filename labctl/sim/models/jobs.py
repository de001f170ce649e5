"""Asynchronous jobs: queued → running → success | failure, finishing at once, per poll or per second."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from labctl.sim.exceptions import InvalidValue, OntapApiError
from labctl.sim.models.base import BackendBase, link, now_iso

TERMINAL = ("success", "failure")
JOB_RETENTION_S = 600.0


@dataclass
class JobRuntime:
    """What the simulator needs to finish a job; never part of a state dump."""

    action: Callable[[], None]
    created: float = field(default_factory=time.monotonic)
    polls: int = 0
    fail_with: OntapApiError | None = None
    finished: float | None = None
    cleanup: Callable[[], None] | None = None


class JobsMixin(BackendBase):
    """The job engine. `job_mode` is `{"mode": "immediate"}`, `{"mode": "polls", "polls": N}` or
    `{"mode": "seconds", "seconds": T}`."""

    job_mode: dict[str, Any]
    _jobs: dict[str, JobRuntime]

    def init_jobs(self) -> None:
        """No jobs, immediate mode, no pending job failure."""
        self.job_mode = {"mode": "immediate"}
        self._jobs = {}
        self.pending_job_failure: OntapApiError | None = None

    def set_job_mode(self, mode: dict[str, Any]) -> dict[str, Any]:
        """Change how new jobs progress; raises InvalidValue for an unknown mode."""
        kind = mode.get("mode")
        if kind == "immediate":
            self.job_mode = {"mode": "immediate"}
        elif kind == "polls":
            self.job_mode = {"mode": "polls", "polls": max(1, int(mode.get("polls", 2)))}
        elif kind == "seconds":
            self.job_mode = {"mode": "seconds", "seconds": max(0.0, float(mode.get("seconds", 1.0)))}
        else:
            raise InvalidValue("mode", kind)
        return self.job_mode

    def submit_job(self, description: str, action: Callable[[], None], *, svm: dict[str, Any] | None = None,
                   fail_with: OntapApiError | None = None, cleanup: Callable[[], None] | None = None) -> str:
        """Record a queued job that runs `action` when it completes (then `cleanup`, even on failure)."""
        if fail_with is None:
            fail_with, self.pending_job_failure = self.pending_job_failure, None
        job_uuid = self.new_uuid("job", description)
        record: dict[str, Any] = {"uuid": job_uuid, "description": description, "state": "queued",
                                  "message": "Job is queued: " + description, "code": 0,
                                  "start_time": now_iso(), "_links": link(f"/api/cluster/jobs/{job_uuid}")}
        if svm:
            record["svm"] = svm
        self.state["jobs"][job_uuid] = record
        self._jobs[job_uuid] = JobRuntime(action, fail_with=fail_with, cleanup=cleanup)
        if self.job_mode["mode"] == "immediate":
            self._finish(job_uuid)
        return job_uuid

    def _finish(self, job_uuid: str) -> None:
        runtime = self._jobs[job_uuid]
        record = self.state["jobs"][job_uuid]
        try:
            if runtime.fail_with is not None:
                raise runtime.fail_with
            runtime.action()
        except OntapApiError as exc:
            record.update(state="failure", message=exc.message, code=int(exc.code), error=exc.body()["error"])
        else:
            record.update(state="success", message="success", code=0)
        finally:
            if runtime.cleanup is not None:
                runtime.cleanup()
        record["end_time"] = now_iso()
        runtime.finished = time.monotonic()

    def tick(self) -> None:
        """Finish time-based jobs that are due and forget terminal jobs past their retention."""
        now = time.monotonic()
        for job_uuid, runtime in list(self._jobs.items()):
            record = self.state["jobs"].get(job_uuid)
            if record is None:
                del self._jobs[job_uuid]
                continue
            if runtime.finished is None and self.job_mode["mode"] == "seconds":
                elapsed = now - runtime.created
                if elapsed >= self.job_mode["seconds"]:
                    self._finish(job_uuid)
                elif elapsed > 0:
                    record.update(state="running", message="Job is running")
            elif runtime.finished is not None and now - runtime.finished > JOB_RETENTION_S:
                del self._jobs[job_uuid]
                del self.state["jobs"][job_uuid]

    def poll_job(self, job_uuid: str) -> None:
        """Count a GET of the job; in `polls` mode the job finishes at the Nth GET."""
        runtime = self._jobs.get(job_uuid)
        if runtime is None or runtime.finished is not None or self.job_mode["mode"] != "polls":
            return
        runtime.polls += 1
        record = self.state["jobs"][job_uuid]
        if runtime.polls >= self.job_mode["polls"]:
            self._finish(job_uuid)
        elif runtime.polls > 1:
            record.update(state="running", message="Job is running")

    def job_done(self, job_uuid: str) -> bool:
        """Whether the job reached `success` or `failure`."""
        return self.state["jobs"].get(job_uuid, {}).get("state") in TERMINAL

    def job_wait_s(self, job_uuid: str) -> float | None:
        """Seconds until a job finishes by itself (0 if done), or None when only polls finish it."""
        if self.job_done(job_uuid):
            return 0.0
        runtime = self._jobs.get(job_uuid)
        if runtime is None or self.job_mode["mode"] != "seconds":
            return None
        return max(0.0, self.job_mode["seconds"] - (time.monotonic() - runtime.created))
