"""The monitors, as a table (name, output file, argv builder, needs root), and one monitor process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labctl.experiment.agent.privilege import bpftrace_privilege
from labctl.experiment.agent.progress import tail
from labctl.formats import bpftrace, dmon
from labctl.formats.bundle import Spec


def now() -> float:
    return round(time.time(), 6)


def self_argv() -> list[str]:
    """How to start this agent again: `python ARCHIVE` when it runs from its zipapp (as on the hosts), else
    `python -m labctl.experiment.agent` (a checkout; PYTHONPATH is set by `Monitor.start`)."""
    py = sys.executable or "python3"
    archive = next((p for p in Path(__file__).parents if p.is_file()), None)
    return [py, str(archive)] if archive else [py, "-m", "labctl.experiment.agent"]


def child_env(extra: dict | None = None) -> dict[str, str]:
    """The environment of the agent's children (UTC); from a checkout, with `labctl` on PYTHONPATH."""
    env = dict(os.environ, TZ="UTC", **(extra or {}))
    root = Path(__file__).resolve().parents[3]
    if (root / "labctl").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(root), env.get("PYTHONPATH"))))
    return env


def _dmon(spec: Spec, raw: Path) -> list[str]:
    argv = ["nvidia-smi", "dmon", "-s", "pucvmet", "-o", "DT", "-d", str(spec.monitors["dmon_interval_s"])]
    return ["stdbuf", "-oL", *argv] if shutil.which("stdbuf") else argv


def _nfsiostat(spec: Spec, raw: Path) -> list[str]:
    interval = str(spec.monitors["nfsiostat_interval_s"])
    return [*self_argv(), "hostmon", "nfsiostat", interval, spec.mount, str(raw / "nfsiostat.log")]


def _mountstats(spec: Spec, raw: Path) -> list[str]:
    interval = str(spec.monitors["mountstats_interval_s"])
    return [*self_argv(), "hostmon", "mountstats", spec.proc_mountstats, spec.mount, interval,
            str(raw / "mountstats.log"), str(raw.parent / "nfsrate.json")]


def _bpftrace(spec: Spec, raw: Path) -> list[str]:
    """The trainer's pid is appended when it starts (bpftrace follows its process tree)."""
    program = Path(spec.rundir) / "agent" / spec.bpftrace.get("program", "io_by_second.bt")
    return ["bpftrace", "-f", "json", "-o", str(raw / "bpftrace.jsonl"), str(program)]


@dataclass(frozen=True)
class MonitorDef:
    """One kind of monitor. `stdout_to_output`: its stdout is the output file (else it writes it itself);
    `needs_root`: run as root (through sudo when the SSH user is not root), skipped when it cannot be;
    `with_trainer`: started with the trainer's (waiting) wrapper, not before it."""

    name: str
    output: str
    argv: Callable[[Spec, Path], list[str]]
    stdout_to_output: bool = False
    needs_root: bool = False
    with_trainer: bool = False


MONITORS = (
    MonitorDef("dmon", "dmon.log", _dmon, stdout_to_output=True),
    MonitorDef("nfsiostat", "nfsiostat.log", _nfsiostat),
    MonitorDef("mountstats", "mountstats.log", _mountstats),
    MonitorDef("bpftrace", "bpftrace.jsonl", _bpftrace, needs_root=True, with_trainer=True),
)


class Monitor:
    """One monitor process: command, output file, start/stop, exit status, errors."""

    def __init__(self, kind: MonitorDef, argv: list[str], rundir: Path, env: dict | None = None) -> None:
        self.kind, self.name, self.argv, self.output = kind, kind.name, argv, kind.output
        self.rundir = rundir
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.rec: dict = {
            "name": kind.name,
            "command": argv,
            "output": f"raw/{kind.output}",
            "status": "not started",
            "started_at": None,
            "stopped_at": None,
            "exit_status": None,
            "errors": [],
        }

    @property
    def err_path(self) -> Path:
        return self.rundir / "logs" / f"{self.name}.stderr"

    def start(self) -> None:
        env = child_env(self.env)
        try:
            out = (
                open(self.rundir / "raw" / self.output, "ab")  # noqa: SIM115 - handed to the child
                if self.kind.stdout_to_output
                else subprocess.DEVNULL
            )
            err = open(self.err_path, "ab")  # noqa: SIM115 - handed to the child
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.rundir,
                start_new_session=True,
            )
            self.rec.update(status="running", started_at=now(), pid=self.proc.pid)
        except OSError as exc:
            self.rec.update(status="failed", started_at=now(), stopped_at=now())
            self.rec["errors"].append(f"could not start: {exc}")

    def skip(self, reason: str) -> None:
        self.rec.update(status="skipped", reason=reason)

    def poll(self) -> None:
        if self.proc is None or self.rec["status"] != "running":
            return
        rc = self.proc.poll()
        if rc is not None:
            self.rec.update(status="failed" if rc else "exited", stopped_at=now(), exit_status=rc)
            self.rec["errors"].append(f"exited on its own with status {rc} while training ran")
            self._stderr_tail()

    def stop(self, grace: float = 5.0) -> None:
        if self.proc is None or self.rec["status"] != "running":
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        except PermissionError:  # started through sudo
            subprocess.run(["sudo", "-n", "pkill", "-TERM", "-s", str(self.proc.pid)], capture_output=True)
        try:
            rc = self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                subprocess.run(
                    ["sudo", "-n", "pkill", "-KILL", "-s", str(self.proc.pid)], capture_output=True
                )
            rc = self.proc.wait()
            self.rec["errors"].append(f"did not stop within {grace} s of SIGTERM; killed")
        self.rec.update(status="stopped", stopped_at=now(), exit_status=rc)
        self._stderr_tail()

    def _stderr_tail(self) -> None:
        text = tail(self.err_path, 2000).strip()
        if text:
            self.rec["stderr_tail"] = text


def build_monitors(spec: Spec, rundir: Path) -> list[Monitor]:
    """Every monitor of the table, each started later, or skipped (disabled, or no root for it)."""
    out = []
    strlen = str((spec.bpftrace or {}).get("strlen", 128))
    for kind in MONITORS:
        env = {"BPFTRACE_STRLEN": strlen} if kind.name == "bpftrace" else None
        m = Monitor(kind, kind.argv(spec, rundir / "raw"), rundir, env)
        out.append(m)
        if not spec.monitors.get(kind.name, True):
            m.skip("disabled in experiment.yaml")
            continue
        if kind.needs_root:
            prefix, reason = bpftrace_privilege()
            if reason:
                m.skip(reason)
                continue
            m.argv = m.rec["command"] = [*prefix, *m.argv]
    return out


COMPACT_WRITERS: dict[str, Callable[[Path], object]] = {"dmon": dmon.write_compact,
                                                        "bpftrace": bpftrace.write_compact}


def write_compact_records(raw: Path, monitors: list[Monitor]) -> None:
    """The compact records of the outputs complete only once their monitor has stopped (`dmon.f64`,
    `bpftrace.f64` + `bpftrace.totals.json`, beside the verbatim files); a failure is recorded on its monitor
    (a warning in the report, which then reads the verbatim file), never raised."""
    for m in monitors:
        write = COMPACT_WRITERS.get(m.name)
        if write is not None and (raw / m.output).is_file():
            try:
                write(raw / m.output)
            except Exception as exc:  # noqa: BLE001 - the run record must survive any output
                m.rec["errors"].append(f"compact record of {m.output} not written: {exc}")
