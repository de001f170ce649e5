"""Shims for what a simulated host cannot have, each printing the real tool's formats.

`install_shims(host_root, …)` writes small wrappers into HOST_ROOT/sbin (mount.nfs, mount.nfs4: overlaid onto
/usr/sbin in the host's namespace, where `mount -t nfs4` finds them) and HOST_ROOT/bin (nvidia-smi, nfsiostat:
overlaid onto /usr/local/bin). Each wrapper pins the host's root and runs the Python module with labctl's
interpreter.
"""

from __future__ import annotations

import shlex
import signal
import sys
from pathlib import Path

SHIMS = {
    "sbin/mount.nfs": "labctl.testlab.shims.mount_nfs",
    "sbin/mount.nfs4": "labctl.testlab.shims.mount_nfs",
    "bin/nvidia-smi": "labctl.testlab.shims.nvidia_smi",
    "bin/nfsiostat": "labctl.testlab.shims.nfsiostat",
}


def wrapper(host_root: Path, python: str, pythonpath: str, module: str, name: str) -> str:
    """The shell wrapper for one shim."""
    q = shlex.quote
    return (
        "#!/bin/sh\n"
        f"# labctl simulated-host shim: {name}\n"
        f"LABCTL_SIM_HOST_ROOT={q(str(host_root))}; export LABCTL_SIM_HOST_ROOT\n"
        f"LABCTL_SHIM_NAME={q(name)}; export LABCTL_SHIM_NAME\n"
        f"PYTHONPATH={q(pythonpath)}${{PYTHONPATH:+:$PYTHONPATH}}; export PYTHONPATH\n"
        f"exec {q(python)} -m {module} \"$@\"\n"
    )


def install_shims(host_root: Path, python: str, pythonpath: str) -> list[Path]:
    """Write every shim of a host; returns their paths."""
    written = []
    for rel, module in SHIMS.items():
        path = host_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wrapper(host_root, python, pythonpath, module, path.name), encoding="utf-8")
        path.chmod(0o755)
        written.append(path)
    return written


def exit_on_term(*_: object) -> None:
    """SIGTERM ends the tool like the real one; a second SIGTERM while exiting is ignored, not a traceback."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(0)
