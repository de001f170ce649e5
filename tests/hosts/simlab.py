"""Starting and stopping a simulated lab for tests (behind the `sim_lab` fixture in tests/conftest.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.fileops import pid_alive


def skip_reason() -> str | None:
    """Why a simulated lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the simulated lab needs root (mount namespaces, FUSE)"
    if not Path("/usr/sbin/sshd").exists():
        return "sshd missing (apt-get install openssh-server; scripts/setup.sh does it)"
    if not shutil.which("unshare") or not shutil.which("ssh-keygen"):
        return "unshare or ssh-keygen missing"
    return None


def fuse_reason() -> str | None:
    """Why simulated NFS mounts cannot work here (mfusepy + libfuse3 + /dev/fuse), or None."""
    if not Path("/dev/fuse").exists():
        return "/dev/fuse missing"
    if importlib.util.find_spec("mfusepy") is None:
        return "mfusepy not installed (scripts/setup.sh installs it)"
    try:
        import mfusepy  # noqa: F401
    except OSError as exc:
        return f"libfuse missing ({exc}); apt-get install fuse3"
    return None


def start_lab(base: Path, hosts: int = 2, *, mounts: bool = False) -> Iterator[dict[str, Any]]:
    """`sim up --hosts N` into `base`; yields lab.json's data; `sim down` afterwards. Skips the test where the
    lab cannot start, or with `mounts`, where its simulated NFS mounts cannot work."""
    from labctl.testlab.lab import sim_down, sim_up

    reason = skip_reason() or (fuse_reason() if mounts else None)
    if reason:
        pytest.skip(reason)
    lab = sim_up(base, hosts)
    try:
        yield lab
    finally:
        sim_down(base)


def is_provisioned(lab: dict[str, Any], state: Path) -> bool:
    """Whether a completed `labctl provision` (ledger in `state`) still stands: the ledger's objects are all
    done, and every host is up, records and shows the FlexGroup mount and has LLM Studio's venv (the
    inventory's default paths). A fixture that only needs a provisioned lab provisions when this is false:
    even a provision with nothing to change runs a playbook on every host."""
    mount = {"/mnt/fg_llm": f"{lab['nfs_server']}:/fg_llm"}
    try:
        objects = json.loads((state / "ledger.json").read_text(encoding="utf-8"))["objects"]
        if not objects or any(entry.get("state") != "done" for entry in objects.values()):
            return False
        for host in lab["hosts"]:
            root = Path(host["root"])
            record = json.loads((root / "var-lib" / "labctl" / "host.json").read_text(encoding="utf-8"))
            if not pid_alive(int(host["pid"])) or record.get("mounts") != mount:
                return False
            if " /mnt/fg_llm nfs4 " not in (root / "proc" / "mounts").read_text(encoding="utf-8"):
                return False
            if not (root / "opt" / "labctl" / "h2o-llmstudio" / ".venv" / "bin" / "python").exists():
                return False
    except (OSError, ValueError, KeyError):
        return False
    return True


