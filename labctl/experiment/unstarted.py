"""Runs that never started training: undone on the hosts, and their bundle removed.

`labctl run` prepares every host (agent directory under `labctl_host_workdir`, output directory on the
mount) before any training starts. A run that fails or is interrupted there, or whose controller is killed
there (manifest `state: preparing`), is undone: each host's agent is asked to stop (only this run's own
processes), its run directory is removed and its output directory too where it is still empty; then the
bundle, which holds nothing collected, is removed. A host that cannot be cleaned keeps the bundle, marked
`failed to start` and naming what is left, so that `labctl attach RUN` or `labctl collect RUN` retries.

While `labctl run` is still starting, it holds `<bundle>/.starting.lock`; attach and collect leave such a run
alone.
"""

from __future__ import annotations

import fcntl
import os
import posixpath
import shlex
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labctl.errors import HostError, LabctlError, RunError
from labctl.experiment.agent.ship import ARCHIVE
from labctl.experiment.follow import agent_cmd, target_of
from labctl.experiment.remote import SSH_ERRORS, Remote
from labctl.experiment.runs import save_manifest

NEVER_STARTED = ("preparing", "failed to start", "interrupted before start")
STARTING_LOCK = ".starting.lock"


@contextmanager
def starting(bundle: Path) -> Iterator[None]:
    """Held by `labctl run` while it prepares and starts the hosts (released by the kernel if it dies)."""
    fd = os.open(bundle / STARTING_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
        if bundle.is_dir():
            (bundle / STARTING_LOCK).unlink(missing_ok=True)


def still_starting(bundle: Path) -> bool:
    """Whether a `labctl run` is preparing this bundle right now."""
    try:
        fd = os.open(bundle / STARTING_LOCK, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _clean_command(rec: dict[str, Any]) -> str:
    """Stop this run's agent on the host (if it got that far), remove its run directory, and remove its
    output directory and the run's parent directories only where they are empty."""
    q = shlex.quote
    rundir = rec["rundir"].rstrip("/")
    agent = f"{rundir}/agent/{ARCHIVE}"
    stop = agent_cmd({**rec, "rundir": rundir}, "stop")
    steps = [f"if [ -f {q(agent)} ]; then {stop} >/dev/null 2>&1; fi", f"rm -rf -- {q(rundir)}",
             f"rmdir -- {q(posixpath.dirname(rundir))} 2>/dev/null"]
    if rec.get("output_dir"):
        out = rec["output_dir"].rstrip("/")
        steps += [f"rmdir -- {q(out)} 2>/dev/null", f"rmdir -- {q(posixpath.dirname(out))} 2>/dev/null"]
    return "; ".join(steps) + f"; test ! -e {q(rundir)}"


def clean_hosts(records: list[dict[str, Any]]) -> list[str]:
    """Undo the preparation on every host; returns what could not be removed (empty: all of it)."""
    left: list[str] = []
    for rec in records:
        remote = Remote(target_of(rec))
        try:
            rc, out, err = remote.run(_clean_command(rec), timeout=120)
            if rc != 0:
                left.append(f"{rec['name']}:{rec['rundir']} ({(err or out).strip()[-200:] or f'exit {rc}'})")
        except (*SSH_ERRORS, HostError) as exc:
            left.append(f"{rec['name']}:{rec['rundir']} ({exc})")
        finally:
            remote.close()
    return left


def _records(manifest: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The hosts a run prepared: the manifest's records, else (a manifest written before any was recorded)
    the experiment's hosts in the inventory, where the run's directories would be."""
    if manifest.get("hosts"):
        return manifest["hosts"], []
    from labctl.experiment.hosts import resolve_hosts
    from labctl.experiment.run import host_rundir

    pattern = (manifest.get("experiment") or {}).get("hosts") or "gpu_hosts"
    try:
        targets = resolve_hosts(Path(manifest["inventory"]), pattern)
    except (LabctlError, KeyError, OSError) as exc:
        return [], [f"the hosts of {pattern!r} (inventory unreadable: {exc}): look for "
                    f"<labctl_host_workdir>/{manifest.get('run_id')} on them"]
    return [{**t.as_json(), "rundir": host_rundir(t, manifest["run_id"])} for t in targets], []


def undo(bundle: Path, manifest: dict[str, Any],
         records: list[dict[str, Any]] | None = None) -> tuple[list[str], list[str]]:
    """Clean the hosts of a run that never started (`records`, else those the manifest names), then remove
    its bundle; returns (the hosts cleaned, what is left): with something left, the bundle stays, marked
    `failed to start`, naming it."""
    records, left = (records, []) if records is not None else _records(manifest)
    left += clean_hosts(records)
    names = [r["name"] for r in records]
    if not left:
        shutil.rmtree(bundle, ignore_errors=True)
        return names, []
    manifest.update(state="failed to start", leftovers=left)
    save_manifest(bundle, manifest)
    return names, left


def refuse_unstarted(bundle: Path, manifest: dict[str, Any]) -> None:
    """For attach and collect: a run that never started is undone and reported (RunError); others pass.

    Raises:
        RunError: the run is still starting, or it never started (after undoing it).
    """
    state = manifest.get("state")
    if state not in NEVER_STARTED:
        return
    if still_starting(bundle):
        raise RunError("this run is still starting (a `labctl run` is preparing its hosts)",
                       where=str(bundle), fix="wait for it: that command follows the run once it trains")
    names, left = undo(bundle, manifest)
    how = {"preparing": "its controller stopped while preparing the hosts"}.get(state, state)
    if left:
        raise RunError(
            f"this run never started training ({how}); nothing to follow or collect. Could not remove: "
            + "; ".join(left),
            where=str(bundle),
            fix=f"when the hosts are reachable, rerun `labctl attach {bundle}` to finish the cleanup "
            "(or remove those directories by hand); then start the run again with `labctl run`",
        )
    raise RunError(
        f"this run never started training ({how}); nothing to follow or collect. Its directories on the "
        f"hosts ({', '.join(names) or 'none'}) and its bundle were removed",
        where=str(bundle),
        fix="start it again with `labctl run`",
    )
