"""The control API outside `/api` (like moto's `/moto-api`): log, reset, faults, state, jobs, mounts, I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labctl.sim.exceptions import InvalidValue, OntapApiError
from labctl.sim.models import MountRefused
from labctl.sim.models.base import COLLECTIONS
from labctl.sim.responses import Request, Response

if TYPE_CHECKING:
    from labctl.sim.app import SimApp


class ControlApi:
    """`/_sim/*` handlers; they use the same basic auth as `/api`."""

    def __init__(self, app: SimApp) -> None:
        self.app = app

    def get_requests(self, req: Request) -> Response:
        entries = self.app.request_log()
        return Response(200, {"records": entries, "num_records": len(entries)})

    def clear_requests(self, req: Request) -> Response:
        self.app.clear_log()
        return Response(200, {})

    def reset(self, req: Request) -> Response:
        """Seeded state, no jobs, immediate jobs, no faults, empty request log."""
        self.app.reset()
        return Response(200, {})

    def get_faults(self, req: Request) -> Response:
        faults = self.app.faults.list()
        return Response(200, {"records": faults, "num_records": len(faults)})

    def add_fault(self, req: Request) -> Response:
        """Body: one fault spec, or `{"faults": [spec, …]}`; see `labctl.sim.faults.Fault`."""
        specs = req.body.get("faults", [req.body])
        if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
            raise InvalidValue("faults", specs)
        added = [self.app.faults.add(spec).public() for spec in specs]
        return Response(201, {"records": added, "num_records": len(added)})

    def clear_faults(self, req: Request) -> Response:
        self.app.faults.clear()
        return Response(200, {})

    def get_state(self, req: Request) -> Response:
        """The whole state; `exclude=a,b` drops collections (default `jobs`), `include=jobs` keeps them."""
        raw = req.query.get("exclude")
        exclude = {"jobs"} if raw is None else set(filter(None, raw.split(",")))
        exclude -= set(filter(None, req.query.get("include", "").split(",")))
        unknown = exclude - set(COLLECTIONS)
        if unknown:
            raise InvalidValue("exclude", sorted(unknown)[0])
        with self.app.backend.lock:
            return Response(200, self.app.backend.dump(tuple(sorted(exclude))))

    def get_job_mode(self, req: Request) -> Response:
        return Response(200, dict(self.app.backend.job_mode))

    def set_job_mode(self, req: Request) -> Response:
        """`{"mode": "immediate"}`, `{"mode": "polls", "polls": N}` or `{"mode": "seconds", "seconds": T}`."""
        with self.app.backend.lock:
            return Response(200, dict(self.app.backend.set_job_mode(req.body)))

    def nfs_mount(self, req: Request) -> Response:
        """`{"server", "export", "client", "options"}` → 200 with directory and granted options, or 403."""
        body: dict[str, Any] = req.body
        for key in ("server", "export", "client"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise OntapApiError(f"Missing value for field \"{key}\".", code="2", target=key)
        try:
            with self.app.backend.lock:
                result = self.app.backend.nfs_mount(body["server"], body["export"], body["client"],
                                                    str(body.get("options", "")))
        except MountRefused as exc:
            return Response(403, exc.body())
        return Response(200, result)

    def nfs_io(self, req: Request) -> Response:
        """A batch of I/O from a test host's FUSE layer (see `labctl.sim.models.io_stats`) → 200 with what was
        counted; 400 for a directory no volume holds or a server that is no data LIF."""
        with self.app.backend.lock:
            return Response(200, self.app.backend.record_io(req.body))
