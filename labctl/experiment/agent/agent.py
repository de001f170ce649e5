#!/usr/bin/env python3
"""labctl's host agent (stdlib only), copied to `<workdir>/agent/` of each GPU host over SFTP.

  agent.py start SPEC.json   daemonize (setsid) the run below; print {"pid": …}
  agent.py run SPEC.json     start monitors, then the detached trainer, follow it, stop monitors after it
  agent.py status RUNDIR     print status.json (state "lost" when the agent died mid-run)
  agent.py stop RUNDIR       ask the agent to stop training (or stop it directly when the agent is gone)
  agent.py files RUNDIR      print [{"path", "size", "sha256"}] of every file under RUNDIR/raw
  agent.py facts SPEC.json   print versions and mount facts of this host

Everything it writes stays under RUNDIR on host-local disk (never the measured mount), except what the
trainer itself writes. A failing monitor never stops training; it is recorded in raw/monitors.json.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FINAL = ("finished", "failed", "stopped")


def now() -> float:
    return round(time.time(), 6)


def write_json(path: Path, doc: object) -> None:
    """Atomic JSON write."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def tail(path: Path, size: int = 65536) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - size))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def progress(train_log: Path) -> dict:
    """Epoch, step/total and loss from the end of an LLM Studio log."""
    from labctl.formats.trainlog import progress as log_progress  # noqa: PLC0415 - shipped beside the agent

    return log_progress(tail(train_log))


def last_gpu_pct(dmon_log: Path, gpus: int | None = None) -> float | None:
    """Mean `sm` % over the trainer's GPUs (index < gpus) of the last complete dmon sample."""
    from labctl.formats.dmon import last_sample_sm  # noqa: PLC0415 - shipped beside the agent

    text = tail(dmon_log, 16384)
    lines = text.splitlines()
    if not any(ln.startswith("#") for ln in lines):  # dmon prints its header once: take it from the top
        try:
            with open(dmon_log, encoding="utf-8", errors="replace") as fh:
                head = [ln for ln in fh.read(4096).splitlines() if ln.startswith("#")]
        except OSError:
            head = []
        lines = head + lines[1:]  # the first tail line may be cut
    return last_sample_sm(lines, text.endswith("\n"), gpus)


# ---------------------------------------------------------------------------------------------------
class Monitor:
    """One monitor process: command, output file, start/stop, exit status, errors."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        output: str,
        rundir: Path,
        env: dict | None = None,
        stdout_to_output: bool = True,
    ) -> None:
        self.name, self.argv, self.output = name, argv, output
        self.rundir = rundir
        self.env = env
        self.stdout_to_output = stdout_to_output
        self.proc: subprocess.Popen | None = None
        self.rec: dict = {
            "name": name,
            "command": argv,
            "output": f"raw/{output}" if output else None,
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
        env = dict(os.environ, TZ="UTC", **(self.env or {}))
        try:
            out = (
                open(self.rundir / "raw" / self.output, "ab")  # noqa: SIM115 - handed to the child
                if self.stdout_to_output
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


# ---------------------------------------------------------------------------------------------------
class Agent:
    """The run on one host."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.rundir = Path(spec["rundir"])
        self.raw = self.rundir / "raw"
        self.monitors: list[Monitor] = []
        self.status: dict = {
            "run_id": spec.get("run_id"),
            "host": spec.get("host"),
            "state": "starting",
            "agent_pid": os.getpid(),
            "started_at": now(),
            "trainer": {},
            "progress": {},
        }
        self.stop_requested = False
        self.trainer_proc: subprocess.Popen | None = None
        self.meta: dict = {}

    # -- helpers
    def save_status(self, **changes) -> None:
        self.status.update(changes, updated_at=now())
        self.status["monitors"] = {m.name: m.rec["status"] for m in self.monitors}
        write_json(self.rundir / "status.json", self.status)

    def save_monitors(self) -> None:
        write_json(
            self.raw / "monitors.json",
            {
                "tz": "UTC",
                "host": self.spec.get("host"),
                "run_id": self.spec.get("run_id"),
                "monitors": [m.rec for m in self.monitors],
                "trainer": self.status.get("trainer", {}),
            },
        )

    # -- monitors
    def build_monitors(self) -> None:
        mon = self.spec["monitors"]
        mount = self.spec["mount"]
        py = sys.executable or "python3"
        m = Monitor(
            "dmon",
            ["nvidia-smi", "dmon", "-s", "pucvmet", "-o", "DT", "-d", str(mon["dmon_interval_s"])],
            "dmon.log",
            self.rundir,
        )
        if shutil.which("stdbuf"):
            m.argv = ["stdbuf", "-oL", *m.argv]
        self._add(m, mon.get("dmon", True))
        self._add(
            Monitor(
                "nfsiostat",
                [
                    py,
                    str(HERE / "hostmon.py"),
                    "nfsiostat",
                    str(mon["nfsiostat_interval_s"]),
                    mount,
                    str(self.raw / "nfsiostat.log"),
                ],
                "nfsiostat.log",
                self.rundir,
                stdout_to_output=False,
            ),
            mon.get("nfsiostat", True),
        )
        self._add(
            Monitor(
                "mountstats",
                [
                    py,
                    str(HERE / "hostmon.py"),
                    "mountstats",
                    self.spec["proc_mountstats"],
                    mount,
                    str(mon["mountstats_interval_s"]),
                    str(self.raw / "mountstats.log"),
                    str(self.rundir / "nfsrate.json"),
                ],
                "mountstats.log",
                self.rundir,
                stdout_to_output=False,
            ),
            mon.get("mountstats", True),
        )
        bpf = self.spec.get("bpftrace") or {}
        bm = Monitor(
            "bpftrace",
            [],
            "bpftrace.jsonl",
            self.rundir,
            stdout_to_output=False,
            env={"BPFTRACE_STRLEN": str(bpf.get("strlen", 128))},
        )
        if not mon.get("bpftrace", True):
            self._add(bm, False)
            return
        prefix, reason = bpftrace_privilege()
        if reason:
            bm.skip(reason)
            self.monitors.append(bm)
            return
        bm.argv = [
            *prefix,
            "bpftrace",
            "-f",
            "json",
            "-o",
            str(self.raw / "bpftrace.jsonl"),
            str(HERE / bpf.get("program", "io_by_second.bt")),
        ]
        self.monitors.append(bm)

    def start_bpftrace(self) -> None:
        """bpftrace follows the trainer's process tree: started with the (waiting) wrapper's pid."""
        bm = next((m for m in self.monitors if m.name == "bpftrace"), None)
        if bm is None or bm.rec["status"] != "not started":
            return
        bm.argv = [*bm.argv, str(self.status["trainer"].get("pid"))]
        bm.rec["command"] = bm.argv
        write_json(
            self.raw / "bpftrace.meta.json",
            {**self.meta, "realtime_minus_boottime": self.meta["start"]["realtime_minus_boottime"]},
        )
        bm.start()
        out = self.raw / "bpftrace.jsonl"
        deadline = time.time() + float((self.spec.get("bpftrace") or {}).get("attach_timeout_s", 20))
        while time.time() < deadline and bm.proc is not None and bm.proc.poll() is None:
            if out.exists() and out.stat().st_size > 0:
                bm.rec["attached_at"] = now()
                return
            time.sleep(0.1)
        bm.poll()
        if "attached_at" not in bm.rec:
            bm.rec["errors"].append("no output within the attach timeout; training starts anyway")

    def _add(self, monitor: Monitor, enabled: bool) -> None:
        if not enabled:
            monitor.skip("disabled in experiment.yaml")
        self.monitors.append(monitor)

    def clock_check(self) -> dict:
        boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        wall = time.time()
        return {"at": round(wall, 6), "realtime_minus_boottime": round(wall - boot, 6)}

    # -- trainer
    def start_trainer(self) -> None:
        t = self.spec["trainer"]
        pidfile, rcfile = self.rundir / "trainer.pid", self.rundir / "trainer.rc"
        log = self.raw / "train.log"
        script = (
            'echo $$ > "$0"; while [ ! -e "$LABCTL_TRAIN_GO" ]; do sleep 0.05; done; '
            '"$@" >> "$LABCTL_TRAIN_LOG" 2>&1; echo $? > "$LABCTL_TRAIN_RC"'
        )
        argv = ["sh", "-c", script, str(pidfile), *t["argv"]]
        env = dict(
            os.environ,
            TZ="UTC",
            LABCTL_TRAIN_LOG=str(log),
            LABCTL_TRAIN_RC=str(rcfile),
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
        unit = f"labctl-{self.spec.get('run_id', 'run')}-{self.spec.get('host', 'host')}"
        started = False
        mode = self.spec.get("use_systemd", "auto")  # auto | never | always (tests)
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
            self.trainer_proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            rec.update(detach="setsid", pgid=self.trainer_proc.pid)
        for _ in range(100):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            time.sleep(0.05)
        rec["pid"] = int(pidfile.read_text().strip()) if pidfile.exists() else None
        self.status["trainer"] = rec

    def trainer_done(self) -> bool:
        if self.trainer_proc is not None:
            return self.trainer_proc.poll() is not None
        rec = self.status["trainer"]
        return (self.rundir / "trainer.rc").exists() or not pid_alive(rec.get("pid"))

    def stop_trainer(self) -> None:
        rec = self.status["trainer"]
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
            while time.time() < end and not self.trainer_done():
                time.sleep(0.2)
            if self.trainer_done():
                return

    def finished_flag(self) -> bool:
        flags = self.spec["trainer"].get("flags_path")
        doc = read_json(Path(flags)) if flags else None
        return bool(doc and doc.get("status") == "finished")

    # -- main loop
    def tick(self) -> None:
        for m in self.monitors:
            m.poll()
        rate = read_json(self.rundir / "nfsrate.json") or {}
        self.status["progress"] = progress(self.raw / "train.log")
        self.status["gpu_pct"] = last_gpu_pct(self.raw / "dmon.log", self.spec.get("gpus"))
        if rate:
            self.status["nfs_mbps"] = {
                "read": round(rate.get("read_Bps", 0) / 1e6, 2),
                "write": round(rate.get("write_Bps", 0) / 1e6, 2),
                "at": rate.get("t"),
            }
        if (self.rundir / "stop.request").exists() and not self.stop_requested:
            self.stop_requested = True
            self.save_status(state="stopping")
            self.stop_trainer()
        self.save_status()

    def run(self) -> int:
        (self.rundir / "logs").mkdir(parents=True, exist_ok=True)
        self.raw.mkdir(parents=True, exist_ok=True)
        (self.rundir / "agent.pid").write_text(str(os.getpid()))
        signal.signal(signal.SIGTERM, lambda s, f: (self.rundir / "stop.request").touch())
        self.meta = {"start": self.clock_check(), "checks": []}
        self.save_status(state="monitoring")
        self.build_monitors()
        for m in self.monitors:
            if m.rec["status"] == "not started" and m.name != "bpftrace":
                m.start()
        self.save_monitors()
        try:  # the trainer's wrapper starts now but waits for the go file: bpftrace follows its pid
            self.start_trainer()
        except (OSError, subprocess.SubprocessError) as exc:
            self.status["trainer"] = {"error": f"could not start the trainer: {exc}"}
            return self.finish("failed")
        self.start_bpftrace()
        self.save_monitors()
        self.save_status()
        end = time.time() + float(self.spec["monitors"].get("lead_s", 2.0))
        while time.time() < end and not self.stop_requested:
            self.tick()
            time.sleep(0.2)
        if self.stop_requested:
            self.stop_trainer()
            return self.finish("stopped")
        (self.rundir / "trainer.go").touch()
        self.status["trainer"]["started_at"] = now()
        self.save_status(state="training")
        last_clock = time.time()
        while not self.trainer_done():
            self.tick()
            if time.time() - last_clock > 30:
                self.meta["checks"].append(self.clock_check())
                last_clock = time.time()
            time.sleep(1.0)
        rc_file = self.rundir / "trainer.rc"
        rc = int(rc_file.read_text().strip() or -1) if rc_file.exists() else None
        self.status["trainer"].update(ended_at=now(), exit_status=rc, finished_flag=self.finished_flag())
        self.save_status(state="stopping")
        end = time.time() + float(self.spec["monitors"].get("tail_s", 2.0))
        while time.time() < end:
            self.tick()
            time.sleep(0.2)
        if self.stop_requested:
            return self.finish("stopped")
        return self.finish("finished" if self.status["trainer"]["finished_flag"] else "failed")

    def finish(self, state: str) -> int:
        for m in self.monitors:
            try:
                m.stop()
            except Exception as exc:  # noqa: BLE001 - a monitor must never break the run record
                m.rec["errors"].append(f"stop failed: {exc}")
        if (self.raw / "bpftrace.meta.json").exists():
            self.meta["checks"].append(self.clock_check())
            write_json(
                self.raw / "bpftrace.meta.json",
                {**self.meta, "realtime_minus_boottime": self.meta["start"]["realtime_minus_boottime"]},
            )
        self.save_monitors()
        self.tick()
        self.save_status(state=state, ended_at=now())
        return 0


def unescape(field: str) -> str:
    """Undo the kernel's octal escaping in /proc/mounts fields."""
    from labctl.formats.procmounts import unescape as proc_unescape  # noqa: PLC0415 - shipped beside the agent

    return proc_unescape(field)


def systemd_available() -> bool:
    """systemd-run works only where systemd is PID 1."""
    return bool(shutil.which("systemd-run")) and os.path.isdir("/run/systemd/system")


def bpftrace_privilege() -> tuple[list[str], str | None]:
    """(command prefix, None) when bpftrace can run as root, else ([], why it is skipped)."""
    if not shutil.which("bpftrace"):
        return [], "bpftrace is not installed"
    prefix: list[str] = []
    if os.geteuid() != 0:
        ok = (
            shutil.which("sudo")
            and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0
        )
        if not ok:
            return [], "the SSH user is not root and has no passwordless sudo"
        prefix = ["sudo", "-n", "--preserve-env=BPFTRACE_STRLEN"]
    if not os.path.isdir("/sys/kernel/tracing/events/syscalls") and not os.path.isdir(
        "/sys/kernel/debug/tracing/events/syscalls"
    ):
        mounted = (
            subprocess.run(
                [*prefix, "mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], capture_output=True
            ).returncode
            == 0
        )
        if not mounted or not os.path.isdir("/sys/kernel/tracing/events/syscalls"):
            return [], "tracefs is not mounted (/sys/kernel/tracing/events/syscalls missing)"
    return prefix, None


# ---------------------------------------------------------------------------------------------------
def cmd_start(spec_path: str) -> int:
    spec_path = str(Path(spec_path).resolve())
    spec = json.loads(Path(spec_path).read_text())
    rundir = Path(spec["rundir"])
    (rundir / "logs").mkdir(parents=True, exist_ok=True)
    with open(rundir / "logs" / "agent.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "run", spec_path],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=rundir,
        )
    for _ in range(100):
        if (rundir / "status.json").exists():
            break
        time.sleep(0.05)
    print(json.dumps({"pid": proc.pid}))
    return 0


def cmd_status(rundir: str) -> int:
    rd = Path(rundir)
    status = read_json(rd / "status.json") or {"state": "unknown"}
    if status.get("state") not in FINAL and not pid_alive(status.get("agent_pid")):
        status["state"] = "lost"
        trainer = status.get("trainer") or {}
        status["trainer_alive"] = pid_alive(trainer.get("pid"))
    print(json.dumps(status))
    return 0


def cmd_stop(rundir: str) -> int:
    rd = Path(rundir)
    (rd / "stop.request").touch()
    status = read_json(rd / "status.json") or {}
    if status and not pid_alive(status.get("agent_pid")):  # the agent is gone: stop what it left running
        monitors = (read_json(rd / "raw" / "monitors.json") or {}).get("monitors", [])
        groups = [(status.get("trainer") or {}).get("pgid")]
        groups += [m.get("pid") for m in monitors if m.get("status") == "running"]
        for pgid in filter(None, groups):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
    print(json.dumps({"requested": True}))
    return 0


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cmd_files(rundir: str) -> int:
    raw = Path(rundir) / "raw"
    out = [
        {"path": str(p.relative_to(raw)), "size": p.stat().st_size, "sha256": sha256(p)}
        for p in sorted(raw.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    ]
    print(json.dumps(out))
    return 0


def _run(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout or out.stderr).strip()
    return text if out.returncode == 0 and text else None


def cmd_facts(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    mount = spec.get("mount", "")
    facts: dict = {
        "time": now(),
        "kernel": os.uname().release,
        "hostname": os.uname().nodename,
        "python": sys.version.split()[0],
        "euid": os.geteuid(),
        "systemd": systemd_available(),
    }
    driver = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    facts["gpu_driver"] = driver.splitlines()[0].strip() if driver else None
    facts["gpus"] = _run(["nvidia-smi", "-L"])
    facts["dataset_exists"] = bool(spec.get("dataset")) and os.path.isfile(spec["dataset"])
    facts["backbone_exists"] = bool(spec.get("backbone_dir")) and os.path.isdir(spec["backbone_dir"])
    facts["bpftrace"] = _run(["bpftrace", "--version"])
    nfs = _run(["dpkg-query", "-W", "-f=${Version}", "nfs-common"]) or _run(["rpm", "-q", "nfs-utils"])
    facts["nfs_utils"] = nfs
    repo = spec.get("llmstudio_dir")
    if repo:
        facts["llmstudio_tag"] = _run(["git", "-C", repo, "describe", "--tags", "--always"])
    facts["bpftrace_skip_reason"] = (
        bpftrace_privilege()[1] if spec.get("monitors", {}).get("bpftrace") else None
    )
    mounts = []
    try:
        for line in Path(spec.get("proc_mounts", "/proc/mounts")).read_text().splitlines():
            parts = line.split()
            if len(parts) >= 4 and unescape(parts[1]) == mount:
                mounts.append({"device": parts[0], "fstype": parts[2], "options": parts[3]})
    except OSError as exc:
        facts["mount_error"] = str(exc)
    facts["mounts"] = mounts
    try:
        from labctl.formats.mountstats import find_block  # noqa: PLC0415 - shipped beside the agent

        block = find_block(Path(spec.get("proc_mountstats", "/proc/self/mountstats")).read_text(), mount)
        if block:
            opts = [ln.split(None, 1)[1] for ln in block.splitlines() if ln.strip().startswith("opts:")]
            facts["mountstats_opts"] = opts[0] if opts else None
            facts["nconnect_xprts"] = sum(1 for ln in block.splitlines() if ln.strip().startswith("xprt:"))
    except (OSError, ImportError) as exc:
        facts["mountstats_error"] = str(exc)
    print(json.dumps(facts))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, arg = argv
    if cmd == "run":
        spec = json.loads(Path(arg).read_text())
        return Agent(spec).run()
    handlers = {
        "start": cmd_start,
        "status": cmd_status,
        "stop": cmd_stop,
        "files": cmd_files,
        "facts": cmd_facts,
    }
    if cmd not in handlers:
        print(__doc__, file=sys.stderr)
        return 2
    return handlers[cmd](arg)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
