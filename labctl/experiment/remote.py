"""SSH to a run's hosts with paramiko: host keys verified against the inventory's known_hosts, never added."""

from __future__ import annotations

import getpass
import os
import shlex
import socket
import time

import paramiko

from labctl.errors import HostError
from labctl.experiment.hosts import Target
from labctl.hosts import ssh

SSH_ERRORS = (paramiko.SSHException, OSError, EOFError, socket.timeout)


class Remote:
    """One SSH connection (reconnects on demand)."""

    def __init__(self, target: Target, timeout: float = 15.0) -> None:
        self.target = target
        self.timeout = timeout
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def connect(self) -> paramiko.SSHClient:
        if (
            self._client is not None
            and self._client.get_transport()
            and self._client.get_transport().is_active()
        ):
            return self._client
        self.close()
        t = self.target
        target = ssh.SshTarget(
            name=t.name,
            host=t.address,
            port=t.port,
            user=t.user or getpass.getuser(),
            key_file=os.path.expanduser(t.key_file) if t.key_file else None,
            known_hosts=os.path.expanduser(t.known_hosts or "~/.ssh/known_hosts"),
        )
        client = ssh.connect(target, timeout=self.timeout)  # host keys verified, never added
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(5)
        self._client = client
        return client

    def run(self, command: str, timeout: float = 60.0) -> tuple[int, str, str]:
        """Run a command with no stdin; (exit status, stdout, stderr)."""
        # No stdin file (SSHClient.exec_command makes one): its finalizer always calls shutdown_write(), even
        # after close(), and when the garbage collector runs it on paramiko's transport thread while that
        # thread holds the channel lock, the connection deadlocks (paramiko#2685; seen as a hang opening the
        # next channel). stdin is shut here, in this thread, on the channel itself.
        chan = self.connect().get_transport().open_session(timeout=self.timeout)
        stdout, stderr = chan.makefile("rb"), chan.makefile_stderr("rb")
        try:
            chan.settimeout(timeout)
            chan.exec_command(command)
            chan.shutdown_write()
            out = stdout.read().decode("utf-8", errors="replace")
            err = stderr.read().decode("utf-8", errors="replace")
            return chan.recv_exit_status(), out, err
        finally:
            stdout.close()
            stderr.close()
            chan.close()

    def stream(self, command: str) -> paramiko.Channel:
        """Start a long-running command with no stdin (see `run`); its channel, read with recv_ready()/recv()
        without waiting. The caller closes it."""
        chan = self.connect().get_transport().open_session(timeout=self.timeout)
        try:
            chan.exec_command(command)
            chan.shutdown_write()
        except BaseException:
            chan.close()
            raise
        return chan

    def check(self, command: str, timeout: float = 60.0) -> str:
        """Run a command that must succeed; its stdout."""
        rc, out, err = self.run(command, timeout)
        if rc != 0:
            raise HostError(f"`{command}` exited {rc}: {(err or out).strip()[-500:]}", where=self.target.name)
        return out

    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._sftp = self.connect().open_sftp()
        return self._sftp

    def put_bytes(self, data: bytes, remote: str, mode: int = 0o644) -> None:
        sftp = self.sftp()
        with sftp.open(remote, "w") as fh:
            fh.write(data)
        sftp.chmod(remote, mode)

    def put_text(self, text: str, remote: str, mode: int = 0o644) -> None:
        self.put_bytes(text.encode("utf-8"), remote, mode)

    def mkdir(self, path: str) -> None:
        self.check(f"mkdir -p {shlex.quote(path)}")

    def clock_offset(self, samples: int = 7) -> dict:
        """Host clock − controller clock (NTP-style: the exchange with the smallest round trip wins).

        One Python process on the host answers each line on stdin with its time.time(), so neither SSH
        session setup nor interpreter start-up enters the round trip.
        """
        script = (
            "import sys,time\nfor _ in sys.stdin:\n"
            "    sys.stdout.write(repr(time.time())+'\\n'); sys.stdout.flush()"
        )
        chan = self.connect().get_transport().open_session(timeout=self.timeout)
        chan.settimeout(self.timeout)
        chan.exec_command(f"{shlex.quote(self.target.python)} -u -c {shlex.quote(script)}")
        best: tuple[float, float, float] | None = None
        buf = b""
        try:
            for _ in range(samples):
                t0 = time.time()
                chan.sendall(b"t\n")
                while b"\n" not in buf:
                    data = chan.recv(256)
                    if not data:
                        raise HostError("the clock probe exited", where=self.target.name)
                    buf += data
                t1 = time.time()
                line, buf = buf.split(b"\n", 1)
                host = float(line)
                if best is None or t1 - t0 < best[1]:
                    best = (host - (t0 + t1) / 2, t1 - t0, t1)
        finally:
            chan.close()
        assert best is not None
        return {
            "offset_s": round(best[0], 6),
            "rtt_s": round(best[1], 6),
            "measured_at": round(best[2], 6),
            "method": f"min-RTT of {samples} stdin/stdout exchanges over SSH",
        }

    def close(self) -> None:
        for obj in (self._sftp, self._client):
            try:
                if obj is not None:
                    obj.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass
        self._sftp = self._client = None
