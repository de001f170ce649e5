"""`sim down` stops only the host's own processes, never one that merely reuses its pid or namespace id."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from labctl.testlab.sshhost import belongs_to, namespace_of, stop_host


def _sleeper(env_root: str | None = None) -> subprocess.Popen:
    """A `sleep 30`, returned once it runs `sleep`: until the exec, /proc shows the forked parent's
    environment (without the host root), and a check made then would see a stranger."""
    env = dict(os.environ)
    if env_root:
        env["LABCTL_SIM_HOST_ROOT"] = env_root
    proc = subprocess.Popen(["sleep", "30"], env=env)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[0] != b"sleep":
        assert time.monotonic() < deadline, "sleep did not start"
        time.sleep(0.005)
    return proc


def test_a_process_belongs_to_the_host_whose_root_it_carries(tmp_path):
    ours, other = _sleeper(str(tmp_path / "gpu1")), _sleeper()
    try:
        assert belongs_to(ours.pid, str(tmp_path / "gpu1"))
        assert not belongs_to(other.pid, str(tmp_path / "gpu1"))
        assert not belongs_to(ours.pid, str(tmp_path / "gpu2"))
    finally:
        ours.kill(), other.kill()
        ours.wait(), other.wait()


def test_stop_host_leaves_a_stranger_with_the_recorded_pid_alone(tmp_path):
    stranger = _sleeper()
    try:
        host = {"name": "gpu1", "root": str(tmp_path / "gpu1"), "pid": stranger.pid,
                "mount_ns": namespace_of(stranger.pid), "namespace": False}
        assert stop_host(host) is False
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_host_stops_its_own_sshd_stand_in(tmp_path):
    ours = _sleeper(str(tmp_path / "gpu1"))
    host = {"name": "gpu1", "root": str(tmp_path / "gpu1"), "pid": ours.pid,
            "mount_ns": None, "namespace": False}
    assert stop_host(host) is True
    assert ours.wait(timeout=10) is not None
