"""The host agent's commands (`python agent.pyz COMMAND ARG`), each printing one JSON document:

  start SPEC.json   daemonize (setsid) the run below; print {"pid": …}
  run SPEC.json     start monitors, then the detached trainer, follow it, stop monitors after it
  status RUNDIR     print status.json (state "lost" when the agent died mid-run)
  watch RUNDIR      print that status as a line now, whenever it changes and at least every 5 s, until it is
                    final or lost: one process for the whole run where `status` polls start one each time
  stop RUNDIR       ask the agent to stop training (or stop it directly when the agent is gone)
  files RUNDIR      print [{"path", "size", "sha256"}] of every file under RUNDIR/raw
  facts SPEC.json   print versions and mount facts of this host
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from labctl.errors import LabctlError
from labctl.fileops import pid_alive, sha256_file
from labctl.formats.bundle import Monitors, Spec, Status

FINAL = ("finished", "failed", "stopped")
HEARTBEAT_S = 5.0  # `watch` says the status at least this often, changed or not


# The supervisor, the monitors and the facts are imported by the commands that use them: `status` and
# `watch` only read status.json.


def cmd_start(spec_path: str) -> int:
    from labctl.experiment.agent.monitors import child_env, self_argv

    spec_path = str(Path(spec_path).resolve())
    rundir = Path(Spec.load(Path(spec_path)).rundir)
    (rundir / "logs").mkdir(parents=True, exist_ok=True)
    with open(rundir / "logs" / "agent.log", "ab") as log:
        proc = subprocess.Popen(
            [*self_argv(), "run", spec_path],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=rundir,
            env=child_env(),
        )
    for _ in range(100):
        if (rundir / "status.json").exists():
            break
        time.sleep(0.05)
    print(json.dumps({"pid": proc.pid}))
    return 0


def _status(rundir: Path) -> Status | None:
    try:
        return Status.load(rundir / "status.json")
    except LabctlError:
        return None


def _current(rundir: Path) -> Status:
    """status.json, with state "lost" when the run is not final and its agent is gone."""
    status = _status(rundir) or Status()
    if status.state not in FINAL and not pid_alive(status.agent_pid):
        status.state = "lost"
        status.trainer_alive = pid_alive(status.trainer.get("pid"))
    return status


def cmd_status(rundir: str) -> int:
    print(json.dumps(_current(Path(rundir)).to_dict()))
    return 0


def cmd_watch(rundir: str) -> int:
    last, said = "", 0.0
    while True:
        status = _current(Path(rundir))
        line = json.dumps(status.to_dict())
        if line != last or time.monotonic() - said >= HEARTBEAT_S:
            try:
                print(line, flush=True)
            except BrokenPipeError:  # the controller went away
                return 0
            last, said = line, time.monotonic()
        if status.state in (*FINAL, "lost"):
            return 0
        time.sleep(1.0)


def cmd_stop(rundir: str) -> int:
    rd = Path(rundir)
    (rd / "stop.request").touch()
    status = _status(rd)
    if status and not pid_alive(status.agent_pid):  # the agent is gone: stop what it left running
        try:
            monitors = Monitors.load(rd / "raw" / "monitors.json").monitors
        except LabctlError:
            monitors = []
        groups = [status.trainer.get("pgid")]
        groups += [m.get("pid") for m in monitors if m.get("status") == "running"]
        for pgid in filter(None, groups):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
    print(json.dumps({"requested": True}))
    return 0


def cmd_files(rundir: str) -> int:
    raw = Path(rundir) / "raw"
    out = [
        {"path": str(p.relative_to(raw)), "size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(raw.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    ]
    print(json.dumps(out))
    return 0


def cmd_facts(spec_path: str) -> int:
    from labctl.experiment.agent.facts import host_facts

    print(json.dumps(host_facts(Spec.load(Path(spec_path)))))
    return 0


def cmd_run(spec_path: str) -> int:
    from labctl.experiment.agent.supervisor import Supervisor

    return Supervisor(Spec.load(Path(spec_path))).run()


COMMANDS = {"start": cmd_start, "run": cmd_run, "status": cmd_status, "watch": cmd_watch, "stop": cmd_stop,
            "files": cmd_files, "facts": cmd_facts}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]](argv[1])
    except LabctlError as exc:  # a spec that is not this labctl's: said in one line, no traceback
        print(f"error: {exc.message}" + (f" (fix: {exc.fix})" if exc.fix else ""), file=sys.stderr)
        return 2
