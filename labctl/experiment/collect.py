"""Fetch every raw file of a run into `runs/<run-id>/raw/<host>/` (SFTP, resumable, sha256-verified).

Nothing collected is ever overwritten: a file already there with the same hash is skipped, one with a
different hash keeps its place and the new copy is stored beside it as `<name>.<n>`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from labctl.errors import HostError, RunError
from labctl.experiment.follow import FINAL, agent_cmd, poll, target_of
from labctl.experiment.manifest import finalize
from labctl.experiment.remote import SSH_ERRORS, Remote
from labctl.experiment.runs import load_manifest, save_manifest
from labctl.experiment.unstarted import refuse_unstarted
from labctl.fileops import sha256_file

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def _free_name(path: Path) -> Path:
    n = 1
    while True:
        candidate = path.with_name(f"{path.name}.{n}")
        if not candidate.exists():
            return candidate
        n += 1


def fetch_file(remote: Remote, remote_path: str, local: Path, size: int, digest: str) -> dict[str, Any]:
    """Download one file (resuming a `.part`), verify its sha256; returns what happened."""
    if local.exists():
        if sha256_file(local) == digest:
            return {"status": "present"}
        local = _free_name(local)
    part = local.with_name(local.name + ".part")
    local.parent.mkdir(parents=True, exist_ok=True)
    for attempt in (1, 2):
        offset = part.stat().st_size if part.exists() else 0
        if offset > size:
            part.unlink()
            offset = 0
        with remote.sftp().open(remote_path, "rb") as src, open(part, "ab") as dst:
            src.seek(offset)
            if size > offset:
                src.prefetch(size)
            while True:
                block = src.read(CHUNK)
                if not block:
                    break
                dst.write(block)
        if sha256_file(part) == digest:
            os.replace(part, local)
            return {"status": "fetched", "path": str(local), "resumed_from": offset or None}
        part.unlink()
        log.warning("sha256 mismatch for %s (attempt %d)", remote_path, attempt)
    raise HostError(f"{remote_path}: sha256 does not match after two downloads", where=remote.target.name)


def _update_clock(remote: Remote, rec: dict[str, Any]) -> None:
    """Add the end-of-run clock check to raw/clock.json on the host (once)."""
    path = f"{rec['rundir']}/raw/clock.json"
    try:
        with remote.sftp().open(path, "r") as fh:
            clock = json.loads(fh.read())
    except (OSError, ValueError):
        clock = dict(rec.get("clock") or {}, checks=[rec.get("clock")] if rec.get("clock") else [])
    if clock.get("end_checked"):
        return
    check = remote.clock_offset()
    clock.setdefault("checks", []).append(check)
    clock["end_checked"] = True
    clock.setdefault("offset_s", check["offset_s"])
    clock.setdefault("measured_at", check["measured_at"])
    remote.put_text(json.dumps(clock, indent=1), path)


def collect_host(bundle: Path, rec: dict[str, Any], *, force: bool) -> dict[str, Any]:
    """Collect one host; returns its report (status, files, errors)."""
    remote = Remote(target_of(rec))
    report: dict[str, Any] = {"name": rec["name"], "errors": [], "files": []}
    try:
        st = poll(remote, rec)
        report["status"] = st
        if st.get("state") not in FINAL and not force:
            raise RunError(
                f"{rec['name']} is still {st.get('state')}", fix="`labctl attach RUN` waits for the end"
            )
        if st.get("state") in FINAL:
            _update_clock(remote, rec)
        rc, out, err = remote.run(agent_cmd(rec, "files"), timeout=600)
        if rc != 0:
            raise HostError(f"listing raw files failed: {(err or out).strip()[-300:]}", where=rec["name"])
        for item in json.loads(out):
            local = bundle / "raw" / rec["name"] / item["path"]
            try:
                result = fetch_file(
                    remote, f"{rec['rundir']}/raw/{item['path']}", local, item["size"], item["sha256"]
                )
                report["files"].append({**item, **result})
            except (*SSH_ERRORS, HostError) as exc:
                report["errors"].append(f"{item['path']}: {exc}")
    except RunError:
        raise
    except (*SSH_ERRORS, HostError, ValueError) as exc:
        report["errors"].append(f"collection failed: {exc}")
    finally:
        remote.close()
    return report


def collect(bundle: Path, *, force: bool = False) -> dict[str, Any]:
    """Collect every host of the run and write the complete manifest; returns the manifest."""
    manifest = load_manifest(bundle)
    refuse_unstarted(bundle, manifest)
    hosts = manifest["hosts"]
    if not hosts:
        raise RunError("this run has no started host to collect from", where=str(bundle))
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(hosts)))) as pool:
        futures = [pool.submit(collect_host, bundle, h, force=force) for h in hosts]
    reports = [f.result() for f in futures]
    manifest = finalize(bundle, load_manifest(bundle), reports)
    manifest["times"]["collected"] = round(time.time(), 6)
    save_manifest(bundle, manifest)
    return manifest


def require_complete(bundle: Path, manifest: dict[str, Any]) -> None:
    """Raise RunError naming what is missing unless every host ended and every file was fetched, verified."""
    if manifest["complete"]:
        return
    missing = manifest.get("missing") or manifest.get("errors") or ["(unknown)"]
    shown = "; ".join(missing[:10]) + (f"; … {len(missing) - 10} more" if len(missing) > 10 else "")
    raise RunError(
        f"the bundle is INCOMPLETE: {shown}",
        where=str(bundle),
        fix=f"rerun `labctl collect {bundle}` (add --force while training still runs): it resumes, keeping "
        "every file already fetched and verified",
    )


def require_success(bundle: Path, manifest: dict[str, Any]) -> None:
    """Raise RunError unless training finished on every host (judged by LLM Studio's own flag)."""
    if not manifest["success"]:
        raise RunError(
            f"training did not finish on every host (state: {manifest['state']}); "
            f"the bundle was collected anyway",
            where=str(bundle),
            fix="see raw/<host>/train.log and raw/<host>/monitors.json",
        )
