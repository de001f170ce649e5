"""What this host lets the agent do: systemd-run for the trainer, root (or sudo) and tracefs for bpftrace."""

from __future__ import annotations

import os
import shutil
import subprocess


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
