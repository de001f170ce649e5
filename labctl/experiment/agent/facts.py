"""This host's facts for the manifest and the run's checks: versions, GPUs, the mount as the kernel has it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from labctl.experiment.agent.monitors import now
from labctl.experiment.agent.privilege import bpftrace_privilege, systemd_available
from labctl.formats.bundle import Spec
from labctl.formats.mountstats import find_block
from labctl.formats.procmounts import unescape


def _run(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout or out.stderr).strip()
    return text if out.returncode == 0 and text else None


def _mem_total() -> int | None:
    """The host's memory (MemTotal in /proc/meminfo), bytes: whether the data set fits in the page cache."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def host_facts(spec: Spec) -> dict[str, Any]:
    """Versions (kernel, driver, bpftrace, nfs-utils, Python, LLM Studio tag) and the mount's facts."""
    mount = spec.mount
    facts: dict[str, Any] = {
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
    facts["dataset_exists"] = bool(spec.dataset) and os.path.isfile(spec.dataset or "")
    facts["dataset_bytes"] = os.path.getsize(spec.dataset or "") if facts["dataset_exists"] else None
    facts["mem_total_bytes"] = _mem_total()
    facts["backbone_exists"] = bool(spec.backbone_dir) and os.path.isdir(spec.backbone_dir or "")
    facts["bpftrace"] = _run(["bpftrace", "--version"])
    nfs = _run(["dpkg-query", "-W", "-f=${Version}", "nfs-common"]) or _run(["rpm", "-q", "nfs-utils"])
    facts["nfs_utils"] = nfs
    if spec.llmstudio_dir:
        facts["llmstudio_tag"] = _run(["git", "-C", spec.llmstudio_dir, "describe", "--tags", "--always"])
    facts["bpftrace_skip_reason"] = bpftrace_privilege()[1] if spec.monitors.get("bpftrace") else None
    mounts = []
    try:
        for line in Path(spec.proc_mounts).read_text().splitlines():
            parts = line.split()
            if len(parts) >= 4 and unescape(parts[1]) == mount:
                mounts.append({"device": parts[0], "fstype": parts[2], "options": parts[3]})
    except OSError as exc:
        facts["mount_error"] = str(exc)
    facts["mounts"] = mounts
    try:
        block = find_block(Path(spec.proc_mountstats).read_text(), mount)
        if block:
            opts = [ln.split(None, 1)[1] for ln in block.splitlines() if ln.strip().startswith("opts:")]
            facts["mountstats_opts"] = opts[0] if opts else None
            facts["nconnect_xprts"] = sum(1 for ln in block.splitlines() if ln.strip().startswith("xprt:"))
    except OSError as exc:
        facts["mountstats_error"] = str(exc)
    return facts
