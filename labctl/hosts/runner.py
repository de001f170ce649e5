"""Run labctl's playbooks through ansible-runner: a fresh private_data_dir per run, events → per-host results.

Every run gets `STATE_DIR/runs/<UTC time>-<phase>/` as its private data dir; ansible-runner keeps the run's
events (artifacts/<id>/job_events/*.json, stdout) there. While it runs, a rich live table shows each host's
current task and counters; a failing host never hides the others' results.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from labctl.config.inventory import read_inventory
from labctl.errors import HostError
from labctl.paths import private_dir, repo_data
from labctl.redact import scrub_env

# Results of these modules (by action name) and tasks (by task name) are kept in HostResult.data.
KEEP = {
    "labctl_prechecks": "prechecks",
    "labctl_nfs_verify": "mount",
    "labctl_stop_users": "release",
}
KEEP_TASKS = {
    "Report the LLM Studio checkout": "llmstudio",
    "Check train_full.pq and its columns": "dataset",
}


@dataclass
class HostResult:
    """What one playbook run did on one host."""

    name: str
    status: str = "pending"  # pending | running | ok | changed | failed | unreachable | skipped
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    task: str = ""
    message: str | None = None
    failed_task: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def succeeded(self) -> bool:
        return self.status in ("ok", "changed")


@dataclass
class PlaybookRun:
    """One playbook run: its artifacts directory, outcome and per-host results."""

    phase: str
    playbook: str
    private_data_dir: str
    rc: int | None = None
    status: str = "new"
    hosts: dict[str, HostResult] = field(default_factory=dict)
    # each play's own per-host results, in the order the plays started (a playbook that imports others)
    plays: list[dict[str, HostResult]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "playbook": self.playbook,
            "private_data_dir": self.private_data_dir,
            "rc": self.rc,
            "status": self.status,
            "hosts": {k: v.to_json() for k, v in self.hosts.items()},
            "plays": [{k: v.to_json() for k, v in play.items()} for play in self.plays],
        }

    def play_run(self, index: int, phase: str) -> PlaybookRun:
        """The `index`-th play's results as a run of its own (no host results when it never started)."""
        hosts = self.plays[index] if index < len(self.plays) else {}
        return PlaybookRun(phase, self.playbook, self.private_data_dir, self.rc, self.status, dict(hosts))


def playbook_path(name: str) -> Path:
    """A shipped playbook (playbooks/NAME)."""
    path = repo_data("playbooks", name)
    if not path.exists():
        raise HostError(f"playbook {name} not found", where=str(path), fix="reinstall labctl")
    return path


REINSTALL = "install labctl with its dependencies (pipx install, or scripts/setup.sh)"


def ansible_bin_dir() -> str:
    """Where labctl's own Ansible commands are: beside its interpreter (a venv, or pipx's, whose bin is not on
    PATH), else the first on PATH."""
    here = Path(sys.executable).parent
    if (here / "ansible-playbook").exists():
        return str(here)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise HostError("ansible-playbook not found", fix=REINSTALL)
    return str(Path(found).parent)


def _tool_path() -> str:
    """PATH for Ansible's commands: labctl's Ansible first."""
    return os.pathsep.join([ansible_bin_dir(), os.environ.get("PATH", os.defpath)])


def inventory_hosts(inventory: Path, group: str = "gpu_hosts") -> dict[str, dict[str, Any]]:
    """The hosts of `group` with their `labctl_*`/`ansible_*` variables, as Ansible resolves them (the
    command's one inventory load, `labctl.config.inventory`)."""
    return {h.name: dict(h.vars) for h in read_inventory(inventory, full=True).groups.get(group, [])}


def _message(res: dict[str, Any]) -> str:
    """The clearest one-line reason from a failed/unreachable task result."""
    msg = res.get("msg") or ""
    if res.get("stderr") and (not msg or msg == "non-zero return code"):
        # a failed command: what it said (e.g. "mount.nfs: Connection refused"), not Ansible's generic line
        argv = res.get("cmd")
        name = argv[0] if isinstance(argv, list) and argv else "the command"
        msg = f"{name} exited {res.get('rc')}: {res['stderr']}" if msg else res["stderr"]
    if res.get("results"):
        inner = [r for r in res["results"] if r.get("failed") or r.get("unreachable")]
        if inner:
            msg = msg or _message(inner[0])
    if isinstance(msg, list):
        msg = "; ".join(str(m) for m in msg)
    text = " ".join(str(msg).split())[:1200] or "failed (no message)"
    raw = " ".join(str(res.get(k) or "") for k in ("msg", "stderr", "module_stderr", "module_stdout"))
    if "must have a tty" in raw or "requiretty" in raw:
        text += f" [{TTY_HINT}]"
    return text


TTY_HINT = (
    "sudo on this host requires a tty, which SSH pipelining does not give: set `ansible_pipelining: false` "
    "for it in the inventory, or drop `Defaults requiretty` from its sudoers"
)


class _Tracker:
    """Turns ansible-runner events into HostResults and a live table."""

    def __init__(self, run: PlaybookRun, hosts: list[str], title: str) -> None:
        self.run = run
        self.title = title
        for name in hosts:
            run.hosts[name] = HostResult(name)
        self.live: Live | None = None

    def table(self) -> Table:
        table = Table(title=self.title, title_justify="left", expand=False, show_lines=False)
        for col in ("host", "status", "ok", "changed", "failed", "task / error"):
            table.add_column(col, overflow="fold")
        for h in self.run.hosts.values():
            style = {"failed": "red", "unreachable": "red", "changed": "yellow", "ok": "green"}.get(
                h.status, ""
            )
            detail = h.message if h.message else h.task
            table.add_row(
                h.name,
                f"[{style}]{h.status}[/]" if style else h.status,
                str(h.ok),
                str(h.changed),
                str(h.failed),
                detail or "",
            )
        return table

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {}) or {}
        if kind == "playbook_on_play_start":
            self.run.plays.append({})
        host = data.get("host")
        if host and host not in self.run.hosts:
            self.run.hosts[host] = HostResult(host)
        if host and self.run.plays:
            play = self.run.plays[-1]
            self._update(play.setdefault(host, HostResult(host)), kind, data, play)
        self._update(self.run.hosts.get(host) if host else None, kind, data, self.run.hosts)
        if kind == "playbook_on_stats":
            for play in self.run.plays:
                self._update(None, kind, data, play)
        if self.live is not None:
            self.live.update(self.table())
        return True

    @staticmethod
    def _update(h: HostResult | None, kind: str, data: dict[str, Any], hosts: dict[str, HostResult]) -> None:
        """One event into the host's result `h` (of the whole run, or of one play: `hosts`)."""
        if kind == "runner_on_start" and h:
            h.status = "running" if h.status == "pending" else h.status
            h.task = data.get("task", "")
        elif kind == "runner_on_ok" and h:
            res = data.get("res", {}) or {}
            h.ok += 1
            if res.get("changed"):
                h.changed += 1
            action = data.get("task_action", "") or data.get("resolved_action", "")
            key = KEEP.get(action.rsplit(".", 1)[-1]) or KEEP_TASKS.get(data.get("task", ""))
            if key:
                h.data[key] = {k: v for k, v in res.items() if not k.startswith("_") and k != "invocation"}
        elif kind == "runner_on_failed" and h:
            res = data.get("res", {}) or {}
            if data.get("ignore_errors"):
                h.ok += 1
            else:
                h.failed += 1
                h.status = "failed"
                h.failed_task = data.get("task", "")
                h.message = f"{h.failed_task}: {_message(res)}"
                action = (data.get("task_action", "") or "").rsplit(".", 1)[-1]
                key = KEEP.get(action)
                if key:
                    h.data[key] = {
                        k: v for k, v in res.items() if not k.startswith("_") and k != "invocation"
                    }
        elif kind == "runner_on_unreachable" and h:
            res = data.get("res", {}) or {}
            h.status = "unreachable"
            h.failed_task = data.get("task", "")
            h.message = f"unreachable: {_message(res)}"
        elif kind == "runner_on_skipped" and h:
            h.skipped += 1
        elif kind == "playbook_on_stats":
            for hr in hosts.values():
                if hr.status in ("pending", "running"):
                    hr.status = "changed" if hr.changed else "ok" if hr.ok or hr.skipped else "skipped"


MAX_FORKS = 64


def _scrub_secrets(status: dict[str, Any], runner_config: Any) -> None:
    """ansible-runner's status handler: at "starting", before it records the command and spawns
    ansible-playbook, the secret variables leave the environment it inherited from labctl."""
    if status.get("status") == "starting":
        runner_config.env = scrub_env(runner_config.env)


def run_playbook(
    name: str,
    inventory: Path,
    state_dir: Path,
    extra_vars: dict[str, Any] | None = None,
    *,
    phase: str | None = None,
    limit: list[str] | None = None,
    console: Console | None = None,
    hosts: list[str] | None = None,
    live: bool = True,
    timeout: int = 3600,
) -> PlaybookRun:
    """Run playbooks/NAME against `inventory`; returns per-host results (never raises for host failures)."""
    import ansible_runner

    phase = phase or Path(name).stem
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{time.monotonic_ns() % 10**6:06d}"
    pdd = private_dir(state_dir / "runs" / f"{stamp}-{phase}")
    path = playbook_path(name)
    run = PlaybookRun(phase=phase, playbook=str(path), private_data_dir=str(pdd))
    names = hosts if hosts is not None else list(inventory_hosts(inventory))
    if limit is not None:
        names = [n for n in names if n in limit]
    tracker = _Tracker(run, names, f"{phase}: {path.name}")
    if limit is not None and not names:
        run.status, run.rc = "skipped", 0
        return run
    env = {
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_TIMEOUT": "15",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_ROLES_PATH": str(path.parent / "roles"),
        "ANSIBLE_LIBRARY": str(path.parent / "library"),
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        # one SSH exec per task instead of four (no temp file, chmod, rm): the hosts phase runs ~1.5x faster
        # on 8 hosts. Needs sudo without `requiretty`; `ansible_pipelining: false` in the inventory or
        # ANSIBLE_PIPELINING=False in the environment turns it off.
        "ANSIBLE_PIPELINING": os.environ.get("ANSIBLE_PIPELINING", "True"),
        "PATH": _tool_path(),
    }
    kwargs: dict[str, Any] = {
        "private_data_dir": str(pdd),
        "playbook": str(path),
        "inventory": str(Path(inventory).resolve()),
        "extravars": dict(extra_vars or {}),
        "envvars": env,
        "quiet": True,
        "event_handler": tracker,
        "status_handler": _scrub_secrets,
        "settings": {"suppress_ansible_output": True, "job_timeout": timeout},
        "project_dir": str(path.parent),
        "rotate_artifacts": 0,
        # every host at once (Ansible's default is 5 forks): 8 GPU hosts are one wave, not two
        "forks": min(max(len(names), 1), MAX_FORKS),
    }
    if limit is not None:
        kwargs["limit"] = ",".join(names)
    console = console or Console(stderr=True)
    if live and console.is_terminal:
        with Live(tracker.table(), console=console, refresh_per_second=4, transient=True) as lv:
            tracker.live = lv
            result = ansible_runner.run(**kwargs)
            tracker.live = None
    else:
        result = ansible_runner.run(**kwargs)
    run.rc, run.status = result.rc, result.status
    for h in [*run.hosts.values(), *(h for play in run.plays for h in play.values())]:
        if h.status in ("pending", "running"):
            h.status = "failed"
            h.message = (
                h.message or f"the playbook ended ({result.status}, rc={result.rc}) before this host finished"
            )
    (pdd / "labctl-result.json").write_text(
        json.dumps(run.to_json(), indent=1, default=str), encoding="utf-8"
    )
    if result.status == "canceled":
        # ansible-runner took the Ctrl-C and cancelled the playbook: it is an interrupt, not host failures
        raise KeyboardInterrupt(f"{phase} interrupted; its events are kept in {pdd}")
    return run
