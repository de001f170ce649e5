"""The run on one host: monitors first, then the detached trainer, followed to its end, monitors stopped
after it. Everything it writes stays under the run directory (host-local disk); a failing monitor never
stops training, it is recorded in raw/monitors.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from labctl.experiment.agent.monitors import Monitor, build_monitors, now, write_compact_records
from labctl.experiment.agent.progress import last_gpu_pct, progress
from labctl.experiment.agent.trainer import Trainer
from labctl.fileops import write_json_atomic
from labctl.formats.bundle import Monitors, Spec, Status


def clock_check() -> dict:
    boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    wall = time.time()
    return {"at": round(wall, 6), "realtime_minus_boottime": round(wall - boot, 6)}


def read_rate(path: Path) -> dict:
    """The mountstats sampler's latest read/write bytes/s, or {}."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


class Supervisor:
    """The run on one host."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.rundir = Path(spec.rundir)
        self.raw = self.rundir / "raw"
        self.monitors: list[Monitor] = []
        self.trainer = Trainer(spec)
        self.status = Status(run_id=spec.run_id, host=spec.host, state="starting", agent_pid=os.getpid(),
                             started_at=now())
        self.stop_requested = False
        self.meta: dict = {}

    def save_status(self, state: str | None = None, **changes) -> None:
        if state:
            self.status.state = state
        for key, value in changes.items():
            setattr(self.status, key, value)
        self.status.updated_at = now()
        self.status.monitors = {m.name: m.rec["status"] for m in self.monitors}
        self.status.save(self.rundir / "status.json")

    def save_monitors(self) -> None:
        Monitors(host=self.spec.host, run_id=self.spec.run_id, monitors=[m.rec for m in self.monitors],
                 trainer=self.status.trainer).save(self.raw / "monitors.json")

    def save_meta(self) -> None:
        doc = {**self.meta, "realtime_minus_boottime": self.meta["start"]["realtime_minus_boottime"]}
        write_json_atomic(self.raw / "bpftrace.meta.json", doc, sort_keys=True)

    def start_with_trainer(self) -> None:
        """The monitors that follow the trainer's process tree, started with its (waiting) wrapper's pid."""
        for m in self.monitors:
            if not m.kind.with_trainer or m.rec["status"] != "not started":
                continue
            m.argv = m.rec["command"] = [*m.argv, str(self.status.trainer.get("pid"))]
            self.save_meta()
            m.start()
            self._wait_attached(m)

    def _wait_attached(self, m: Monitor) -> None:
        out = self.raw / m.output
        deadline = time.time() + float(self.spec.bpftrace.get("attach_timeout_s", 20))
        while time.time() < deadline and m.proc is not None and m.proc.poll() is None:
            if out.exists() and out.stat().st_size > 0:
                m.rec["attached_at"] = now()
                return
            time.sleep(0.1)
        m.poll()
        if "attached_at" not in m.rec:
            m.rec["errors"].append("no output within the attach timeout; training starts anyway")

    def tick(self) -> None:
        for m in self.monitors:
            m.poll()
        rate = read_rate(self.rundir / "nfsrate.json")
        self.status.progress = progress(self.raw / "train.log")
        self.status.gpu_pct = last_gpu_pct(self.raw / "dmon.log", self.spec.gpus)
        if rate:
            self.status.nfs_mbps = {
                "read": round(rate.get("read_Bps", 0) / 1e6, 2),
                "write": round(rate.get("write_Bps", 0) / 1e6, 2),
                "at": rate.get("t"),
            }
        if (self.rundir / "stop.request").exists() and not self.stop_requested:
            self.stop_requested = True
            self.save_status(state="stopping")
            self.trainer.stop()
        self.save_status()

    def _follow(self, seconds: float, interval: float = 0.2) -> None:
        end = time.time() + seconds
        while time.time() < end and not self.stop_requested:
            self.tick()
            time.sleep(interval)

    def run(self) -> int:
        (self.rundir / "logs").mkdir(parents=True, exist_ok=True)
        self.raw.mkdir(parents=True, exist_ok=True)
        (self.rundir / "agent.pid").write_text(str(os.getpid()))
        signal.signal(signal.SIGTERM, lambda s, f: (self.rundir / "stop.request").touch())
        self.meta = {"start": clock_check(), "checks": []}
        self.save_status(state="monitoring")
        self.monitors = build_monitors(self.spec, self.rundir)
        for m in self.monitors:
            if m.rec["status"] == "not started" and not m.kind.with_trainer:
                m.start()
        self.save_monitors()
        try:  # the trainer's wrapper starts now but waits for the go file: bpftrace follows its pid
            self.status.trainer = self.trainer.start()
        except (OSError, subprocess.SubprocessError) as exc:
            self.status.trainer = {"error": f"could not start the trainer: {exc}"}
            return self.finish("failed")
        self.start_with_trainer()
        self.save_monitors()
        self.save_status()
        self._follow(float(self.spec.monitors.get("lead_s", 2.0)))
        if self.stop_requested:
            self.trainer.stop()
            return self.finish("stopped")
        self.trainer.go()
        self.save_status(state="training")
        last_clock = time.time()
        while not self.trainer.done():
            self.tick()
            if time.time() - last_clock > 30:
                self.meta["checks"].append(clock_check())
                last_clock = time.time()
            time.sleep(1.0)
        self.status.trainer.update(ended_at=now(), exit_status=self.trainer.exit_status(),
                                   finished_flag=self.trainer.finished_flag())
        self.save_status(state="stopping")
        end = time.time() + float(self.spec.monitors.get("tail_s", 2.0))
        while time.time() < end:
            self.tick()
            time.sleep(0.2)
        if self.stop_requested:
            return self.finish("stopped")
        return self.finish("finished" if self.status.trainer["finished_flag"] else "failed")

    def finish(self, state: str) -> int:
        for m in self.monitors:
            try:
                m.stop()
            except Exception as exc:  # noqa: BLE001 - a monitor must never break the run record
                m.rec["errors"].append(f"stop failed: {exc}")
        write_compact_records(self.raw, self.monitors)
        if (self.raw / "bpftrace.meta.json").exists():
            self.meta["checks"].append(clock_check())
            self.save_meta()
        self.save_monitors()
        self.tick()
        self.save_status(state=state, ended_at=now())
        return 0
