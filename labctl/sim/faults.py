"""Injected faults: make matching calls fail, stall, drop the connection, or make their jobs fail."""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from labctl.sim.exceptions import InvalidValue, OntapApiError

ACTIONS = ("error", "delay", "reset", "job_failure")


@dataclass
class Fault:
    """`count` matching calls (None: all), or each with probability `fraction`, get `action`.

    `path` is a glob on the request path (`/api/storage/volumes*`), `method` one method or `*`.
    """

    action: str = "error"
    method: str = "*"
    path: str = "*"
    status: int = 503
    code: str = "0"
    message: str = "Injected fault"
    delay: float = 0.0
    count: int | None = 1
    fraction: float | None = None
    seed: int = 0
    fired: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to `method` on `path`."""
        return (self.method in ("*", method)) and fnmatch.fnmatchcase(path, self.path)

    def roll(self) -> bool:
        """Whether this call is hit (without consuming the fault)."""
        if self.count is not None and self.fired >= self.count:
            return False
        return self.fraction is None or self._rng.random() < self.fraction

    def error(self) -> OntapApiError:
        """The error an `error` fault answers with."""
        return OntapApiError(self.message, code=self.code, status=self.status)

    def public(self) -> dict[str, Any]:
        """The fault as JSON (for `GET /_sim/faults`)."""
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


class Faults:
    """The active faults, in the order they were added (the first match wins)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, spec: dict[str, Any]) -> Fault:
        """Add a fault from its JSON spec; raises InvalidValue for a bad action or field."""
        known = {k: v for k, v in spec.items() if k in Fault.__dataclass_fields__ and not k.startswith("_")}
        unknown = set(spec) - set(known)
        if unknown:
            raise InvalidValue("fault", sorted(unknown)[0])
        fault = Fault(**known)
        if fault.action not in ACTIONS:
            raise InvalidValue("action", fault.action)
        fault.method = fault.method.upper()
        fault.status, fault.code = int(fault.status), str(fault.code)
        fault._rng = random.Random(fault.seed)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        """Every fault as JSON, in matching order."""
        with self._lock:
            return [f.public() for f in self._faults]

    def take(self, method: str, path: str, job: bool = False) -> Fault | None:
        """The first live fault of the kind (call or job) matching this call, counted as fired."""
        with self._lock:
            for fault in self._faults:
                if (fault.action == "job_failure") == job and fault.matches(method, path) and fault.roll():
                    fault.fired += 1
                    return fault
        return None

    def unfire(self, fault: Fault) -> None:
        """Give back a job fault that no job consumed (the call failed validation)."""
        with self._lock:
            fault.fired -= 1
