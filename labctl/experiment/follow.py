"""Follow a running experiment: live progress per host; Ctrl-C asks whether to stop training or detach.

The controller only reads each agent's status over SSH (one `agent.pyz watch` per host, saying status.json
as it changes), so losing the connection loses nothing: the agents and trainers run detached, and `labctl
attach RUN` follows again.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from labctl.errors import HostError, StateError
from labctl.experiment.agent.ship import ARCHIVE
from labctl.experiment.hosts import Target
from labctl.experiment.remote import SSH_ERRORS, Remote
from labctl.experiment.runs import load_manifest, save_manifest
from labctl.formats.bundle import Status

FINAL = ("finished", "failed", "stopped", "lost")


def target_of(rec: dict[str, Any]) -> Target:
    """A manifest host record back as an SSH target."""
    keys = ("name", "address", "port", "user", "key_file", "known_hosts", "python")
    return Target(**{k: rec[k] for k in keys if rec.get(k) is not None})


def agent_cmd(rec: dict[str, Any], cmd: str) -> str:
    args = (rec.get("python") or "python3", f"{rec['rundir']}/agent/{ARCHIVE}", cmd, rec["rundir"])
    return " ".join(shlex.quote(a) for a in args)


def poll(remote: Remote, rec: dict[str, Any]) -> dict[str, Any]:
    """The agent's status on one host."""
    rc, out, err = remote.run(agent_cmd(rec, "status"), timeout=30)
    if rc != 0:
        raise HostError(f"agent status failed: {(err or out).strip()[-300:]}", where=rec["name"])
    return _parsed(out, rec)


def _parsed(text: str, rec: dict[str, Any]) -> dict[str, Any]:
    try:
        return Status.from_json(text, where=f"{rec['rundir']}/status.json").to_dict()
    except StateError as exc:
        raise HostError(exc.message, where=rec["name"], fix=exc.fix) from exc


class StatusStream:
    """One host's status as `agent.pyz watch` says it, over one SSH channel for the whole run (a line when
    it changes, at least every 5 s), read without waiting. An agent without `watch` (an older labctl's, on a
    run attached to again) is polled with `status` instead."""

    SILENT_S = 20.0  # no line for this long: the stream is taken as broken (and opened again next time)

    def __init__(self, remote: Remote, rec: dict[str, Any]) -> None:
        self.remote, self.rec = remote, rec
        self.chan: Any = None
        self.buf, self.heard, self.lines, self.polling = b"", 0.0, 0, False

    def latest(self) -> dict[str, Any] | None:
        """The newest status said since the last call; None when nothing new was said.

        Raises:
            HostError: the stream ended or fell silent before the run was final (or a poll failed).
        """
        if self.polling:
            return poll(self.remote, self.rec)
        if self.chan is None:
            self.chan = self.remote.stream(agent_cmd(self.rec, "watch"))
            self.buf, self.heard = b"", time.monotonic()
        line = self._read()
        if line is None and self.chan.exit_status_ready():
            line = self._read()  # what it said just before it ended
            if line is None:
                code = self.chan.recv_exit_status()
                self.close()
                if code == 2 and not self.lines:  # its usage text: an agent without `watch`
                    self.polling = True
                    return poll(self.remote, self.rec)
                raise HostError(f"the agent's status stream ended (exit status {code})",
                                where=self.rec["name"])
        if line is None and time.monotonic() - self.heard > self.SILENT_S:
            self.close()
            raise HostError(f"no status from the agent for {self.SILENT_S:.0f} s", where=self.rec["name"])
        return None if line is None else _parsed(line.decode("utf-8", "replace"), self.rec)

    def _read(self) -> bytes | None:
        while self.chan.recv_ready():
            self.buf += self.chan.recv(1 << 16)
        *lines, self.buf = self.buf.split(b"\n")
        lines = [raw for raw in lines if raw.strip()]
        if not lines:
            return None
        self.lines += len(lines)
        self.heard = time.monotonic()
        return lines[-1]

    def close(self) -> None:
        if self.chan is not None:
            self.chan.close()
            self.chan = None


def describe(st: dict[str, Any]) -> tuple[str, float | None, float]:
    """(text, total, completed) for the progress bar of one host."""
    p = st.get("progress") or {}
    parts = [st.get("state", "?")]
    if "epoch" in p:
        parts.append(f"epoch {p['epoch']}/{p['epochs']}")
    if "step" in p:
        parts.append(f"step {p['step']}/{p['total']}")
    if "loss" in p:
        parts.append(f"loss {p['loss']:.2f}")
    if p.get("phase") in ("validation", "checkpoint"):
        parts.append(p["phase"])
    if st.get("gpu_pct") is not None:
        parts.append(f"GPU {st['gpu_pct']:.0f}%")
    nfs = st.get("nfs_mbps")
    if nfs:
        parts.append(f"NFS r {nfs.get('read', 0):.1f} w {nfs.get('write', 0):.1f} MB/s")
    total = completed = None
    if "epochs" in p and "total" in p:
        total = float(p["epochs"] * p["total"])
        completed = float((p.get("epoch", 1) - 1) * p["total"] + p.get("step", 0))
    if st.get("state") == "finished" and total:
        completed = total
    if st.get("error"):
        parts.append(f"[yellow]{st['error']}")
    return "  ".join(parts), total, completed or 0.0


def follow(
    bundle: Path,
    console: Console,
    *,
    poll_s: float = 2.0,
    lost_after_s: float = 600.0,
    interactive: bool | None = None,
) -> str:
    """Follow until every host is done; returns "done" or "detached".

    Raises:
        RunError: the run never started training (it is undone first: see `unstarted`).
    """
    from labctl.experiment.ontap_poll import start_polling
    from labctl.experiment.unstarted import refuse_unstarted

    manifest = load_manifest(bundle)
    refuse_unstarted(bundle, manifest)
    hosts = manifest["hosts"]
    remotes = {h["name"]: Remote(target_of(h)) for h in hosts}
    streams = {h["name"]: StatusStream(remotes[h["name"]], h) for h in hosts}
    status: dict[str, dict[str, Any]] = {}
    unreachable: dict[str, float] = {}
    interactive = sys.stdin.isatty() if interactive is None else interactive
    columns = (
        TextColumn("[bold]{task.fields[host]}"),
        BarColumn(bar_width=16),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[info]}"),
    )
    poller = start_polling(bundle, manifest)  # ONTAP's counters into raw/_ontap/ while the run is followed
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            tasks = {
                h["name"]: progress.add_task("", host=h["name"], info="connecting", total=None) for h in hosts
            }
            while True:
                try:
                    _poll_all(hosts, streams, status, unreachable, lost_after_s)
                    for name, task in tasks.items():
                        st = status.get(name)
                        if name in unreachable:
                            progress.update(
                                task,
                                info=f"[yellow]unreachable for "
                                f"{time.time() - unreachable[name]:.0f} s (training continues)",
                            )
                        elif st:
                            text, total, done = describe(st)
                            progress.update(task, info=text, total=total, completed=done)
                    if hosts and all(status.get(h["name"], {}).get("state") in FINAL for h in hosts):
                        break
                    time.sleep(poll_s)
                except KeyboardInterrupt:
                    progress.stop()
                    choice = _ask(console, interactive)
                    if choice == "detach":
                        _record(bundle, status, detached=True)
                        console.print(f"detached; training continues. Follow again: labctl attach {bundle}")
                        return "detached"
                    if choice == "stop":
                        for h in hosts:
                            try:
                                remotes[h["name"]].run(agent_cmd(h, "stop"), timeout=30)
                            except (*SSH_ERRORS, HostError) as exc:
                                console.print(f"[yellow]{h['name']}: could not ask to stop: {exc}")
                        console.print("stopping training; waiting for the hosts to finish…")
                    progress.start()
    finally:
        if poller is not None:
            poller.stop()
        for s in streams.values():
            s.close()
        for r in remotes.values():
            r.close()
    _record(bundle, status, detached=False)
    return "done"


def _poll_all(hosts, streams, status, unreachable, lost_after_s) -> None:
    for h in hosts:
        name = h["name"]
        if status.get(name, {}).get("state") in FINAL:
            continue
        try:
            latest = streams[name].latest()
            if latest is not None:
                status[name] = latest
            unreachable.pop(name, None)
        except (*SSH_ERRORS, HostError, ValueError) as exc:
            streams[name].close()
            streams[name].remote.close()
            since = unreachable.setdefault(name, time.time())
            if time.time() - since > lost_after_s:
                # give up on this host only: the others finish and are collected; its files stay on it
                status[name] = {"state": "lost", "error": f"lost contact for {lost_after_s:.0f} s: {exc}"}
                unreachable.pop(name, None)


def _ask(console: Console, interactive: bool) -> str:
    if not interactive:
        return "detach"
    console.print()
    try:
        return click.prompt(
            "Stop training, or detach and let it run?",
            type=click.Choice(["stop", "detach", "continue"]),
            default="detach",
        )
    except (click.exceptions.Abort, KeyboardInterrupt, EOFError):
        return "detach"


def _record(bundle: Path, status: dict[str, dict[str, Any]], *, detached: bool) -> None:
    manifest = load_manifest(bundle)
    for h in manifest["hosts"]:
        st = status.get(h["name"])
        if st:
            h["state"] = st.get("state")
    if detached:
        manifest["state"] = "detached"
    save_manifest(bundle, manifest)
