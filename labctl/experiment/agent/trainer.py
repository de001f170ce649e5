"""The trainer, started detached (systemd-run, else its own session) behind a wrapper that waits for a go
file, so that bpftrace can follow its pid from the first instruction."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from labctl.experiment.agent.monitors import now
from labctl.experiment.agent.privilege import systemd_available
from labctl.fileops import pid_alive
from labctl.formats.bundle import Spec

WRAPPER = (
    'echo $$ > "$0"; while [ ! -e "$LABCTL_TRAIN_GO" ]; do sleep 0.05; done; '
    '"$@" >> "$LABCTL_TRAIN_LOG" 2>&1; echo $? > "$LABCTL_TRAIN_RC"'
)


class Trainer:
    """One run's trainer: start (waiting), go, done, stop, and its record (status.json `trainer`)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.rundir = Path(spec.rundir)
        self.proc: subprocess.Popen | None = None
        self.rec: dict = {}

    def start(self) -> dict:
        """Start the wrapper (it waits for `go`); returns the trainer's record."""
        t, spec = self.spec.trainer, self.spec
        pidfile = self.rundir / "trainer.pid"
        argv = ["sh", "-c", WRAPPER, str(pidfile), *t["argv"]]
        env = dict(
            os.environ,
            TZ="UTC",
            LABCTL_TRAIN_LOG=str(self.rundir / "raw" / "train.log"),
            LABCTL_TRAIN_RC=str(self.rundir / "trainer.rc"),
            LABCTL_TRAIN_GO=str(self.rundir / "trainer.go"),
            **{k: str(v) for k, v in (t.get("env") or {}).items()},
        )
        cwd = t.get("cwd") or str(self.rundir)
        rec = {
            "kind": t["kind"],
            "command": t["argv"],
            "cwd": cwd,
            "started_at": now(),
            "output_dir": t.get("output_dir"),
        }
        unit = f"labctl-{spec.run_id or 'run'}-{spec.host or 'host'}"
        started = False
        mode = spec.use_systemd  # auto | never | always (tests)
        if mode == "always" or (mode == "auto" and systemd_available()):
            scope = [] if os.geteuid() == 0 else ["--user"]  # a user unit needs lingering; else setsid
            sd = [
                "systemd-run",
                *scope,
                "--unit",
                unit,
                "--collect",
                "--quiet",
                f"--working-directory={cwd}",
                *[
                    f"--setenv={k}={v}"
                    for k, v in env.items()
                    if k in (t.get("env") or {})
                    or k.startswith(("LABCTL_", "TZ", "PATH", "HOME", "HF_", "CUDA_"))
                ],
                *argv,
            ]
            done = subprocess.run(sd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
            if done.returncode == 0:
                rec.update(detach="systemd-run", unit=unit, systemctl=["systemctl", *scope])
                started = True
            else:
                rec["systemd_error"] = (done.stderr or done.stdout).strip()[-500:]
        if not started:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            rec.update(detach="setsid", pgid=self.proc.pid)
        for _ in range(100):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            time.sleep(0.05)
        rec["pid"] = int(pidfile.read_text().strip()) if pidfile.exists() else None
        self.rec = rec
        return rec

    def go(self) -> None:
        """Let the waiting wrapper start the trainer."""
        (self.rundir / "trainer.go").touch()
        self.rec["started_at"] = now()

    def done(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is not None
        return (self.rundir / "trainer.rc").exists() or not pid_alive(self.rec.get("pid"))

    def exit_status(self) -> int | None:
        rc_file = self.rundir / "trainer.rc"
        return int(rc_file.read_text().strip() or -1) if rc_file.exists() else None

    def stop(self) -> None:
        rec = self.rec
        if rec.get("detach") == "systemd-run":
            systemctl = rec.get("systemctl") or ["systemctl"]
            subprocess.run([*systemctl, "stop", rec["unit"]], capture_output=True, timeout=120)
            return
        pgid = rec.get("pgid") or rec.get("pid")
        if not pgid:
            return
        for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            end = time.time() + wait
            while time.time() < end and not self.done():
                time.sleep(0.2)
            if self.done():
                return

    def finished_flag(self) -> bool:
        """LLM Studio's own verdict: flags.json says `finished`."""
        flags = self.spec.trainer.get("flags_path")
        try:
            doc = json.loads(Path(flags).read_text(encoding="utf-8")) if flags else None
        except (OSError, ValueError):
            doc = None
        return bool(isinstance(doc, dict) and doc.get("status") == "finished")
