"""The controller's ONTAP monitor: while a run is followed, poll the cluster's raw counters every
`monitors.ontap_interval_s` into `raw/_ontap/stats.jsonl` of the bundle.

Each poll is one JSON line `{"poll": n, "t": <controller epoch>, "records": {kind: [record…]}, "errors": {…}}`
(records as ONTAP returns them, `statistics.timestamp` included; nothing of the session, so no secret). Its
outcome is kept as a monitor record in `raw/_ontap/monitors.json`, as the hosts' monitors are. A failing or
slow poll never stops anything: each GET has a bounded timeout and the next tick goes on; a query refused for
lack of privilege is skipped for the rest of the run, with the reason.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from labctl.errors import StateError
from labctl.formats.bundle import Monitors

log = logging.getLogger(__name__)

ONTAP_DIR = "_ontap"  # raw/_ontap/: not a host (host names never start with "_")
STATS = "stats.jsonl"
MAX_ERRORS = 20  # distinct error texts kept in the monitor record


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class OntapPoller:
    """A daemon thread polling ONTAP for one bundle; `start()`, then `stop()` (which polls once more)."""

    def __init__(self, bundle: Path, inventory: Path, interval_s: float,
                 flexgroup: str | None = None) -> None:
        self.dir = bundle / "raw" / ONTAP_DIR
        self.inventory, self.interval_s, self.flexgroup = inventory, interval_s, flexgroup
        self.timeout_s = max(1.0, min(interval_s, 30.0))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="ontap-poll", daemon=True)
        self.rec: dict[str, Any] = {
            "name": "ontap",
            "command": None,
            "output": f"raw/{ONTAP_DIR}/{STATS}",
            "interval_s": interval_s,
            "status": "not started",
            "started_at": None,
            "stopped_at": None,
            "exit_status": None,
            "polls": 0,
            "failed_polls": 0,
            "skipped": {},
            "errors": [],
        }

    def start(self) -> None:
        """Start polling; a run followed again (`labctl attach`) continues the earlier record and file."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._resume()
        self._thread.start()

    def _resume(self) -> None:
        try:
            earlier = Monitors.load(self.dir / Monitors.FILE).monitors[0]
        except (StateError, IndexError):
            return
        if isinstance(earlier, dict):
            for key in ("polls", "failed_polls", "skipped", "errors"):
                if isinstance(earlier.get(key), type(self.rec[key])):
                    self.rec[key] = earlier[key]
            self.rec["followed"] = int(earlier.get("followed") or 1) + 1

    def stop(self) -> None:
        """End the polling after one last poll (bounded: the thread is abandoned after its timeouts)."""
        self._stop.set()
        self._thread.join(timeout=self.timeout_s * 6 + 5)
        if self._thread.is_alive():
            self._error("the last poll did not end in time; stopped waiting for it")
            self.rec.update(status="stopped", stopped_at=_now())
            self._save()

    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - recorded; the run goes on without ONTAP counters
            log.debug("ONTAP poller failed", exc_info=True)
            self.rec.update(status="failed", stopped_at=_now())
            self._error(f"{type(exc).__name__}: {exc}")
            self._save()

    def _run(self) -> None:
        from rich.console import Console

        from labctl.config.lab import load_lab_config
        from labctl.errors import LabctlError
        from labctl.ontap.counters import poll_session, queries, read_counters
        from labctl.ontap.session import ontap_session

        self.rec["started_at"] = _now()
        try:
            cfg = load_lab_config(self.inventory)
            session = ontap_session(cfg, Console(file=io.StringIO()), check=False)
        except LabctlError as exc:
            self.rec.update(status="skipped", reason=f"no ONTAP session: {exc}", stopped_at=_now())
            self._save()
            return
        todo = queries(self.flexgroup or cfg.flexgroup.name)
        self.rec["command"] = [f"GET {q.path}?" + "&".join(f"{k}={v}" for k, v in q.params.items())
                               for q in todo]
        self.rec["status"] = "running"
        self._save()
        with session as ontap, poll_session(ontap) as http:
            while True:  # a stop during the wait gets one more poll: the counters at the run's end
                began = time.monotonic()
                result = read_counters(ontap, http, todo, self.timeout_s)
                self._write(result, began)
                for kind, reason in result.denied.items():
                    self.rec["skipped"][kind] = reason
                todo = [q for q in todo if q.kind not in result.denied]
                if not todo:
                    self.rec.update(status="skipped", reason="ONTAP refused every counter query: "
                                    + "; ".join(self.rec["skipped"].values()), stopped_at=_now())
                    self._save()
                    return
                self._save()
                if self._stop.is_set():
                    break
                self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - began)))
        self.rec.update(status="stopped", stopped_at=_now(), exit_status=0)
        self._save()

    def _write(self, result: Any, began: float) -> None:
        self.rec["polls"] += 1
        if result.errors:
            self.rec["failed_polls"] += 1
            for kind, text in result.errors.items():
                self._error(f"{kind}: {text}")
        line = {
            "poll": self.rec["polls"],
            "t": round(time.time(), 6),
            "took_s": round(time.monotonic() - began, 3),
            "records": result.records,
            "errors": result.errors,
        }
        with open(self.dir / STATS, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, separators=(",", ":")) + "\n")

    def _error(self, text: str) -> None:
        errors = self.rec["errors"]
        if text not in errors and len(errors) < MAX_ERRORS:
            errors.append(text)

    def _save(self) -> None:
        Monitors(host=ONTAP_DIR, monitors=[self.rec]).save(self.dir / Monitors.FILE)


def start_polling(bundle: Path, manifest: dict[str, Any]) -> OntapPoller | None:
    """Start polling ONTAP for the run of `manifest` (None for a bundle without an inventory); the caller
    calls `stop()` when it stops following the run."""
    inventory = manifest.get("inventory")
    if not inventory:
        return None
    monitors = (manifest.get("experiment") or {}).get("monitors") or {}
    poller = OntapPoller(bundle, Path(inventory), float(monitors.get("ontap_interval_s") or 5.0))
    poller.start()
    return poller
