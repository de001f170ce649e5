"""Paramiko helpers for direct SSH to a GPU host (host keys always verified, clear errors).

`target_from_hostvars` builds the connection from the same inventory variables Ansible uses (ansible_host,
ansible_port, ansible_user, ansible_ssh_private_key_file, `-o UserKnownHostsFile=…` in
ansible_ssh_common_args). Unknown or changed host keys are refused (RejectPolicy), never auto-added.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from typing import Any

import paramiko

from labctl.errors import HostError


@dataclass(frozen=True)
class SshTarget:
    """Where and how to reach one host."""

    name: str
    host: str
    port: int = 22
    user: str = "root"
    key_file: str | None = None
    known_hosts: str | None = None

    @property
    def where(self) -> str:
        return f"{self.name} ({self.user}@{self.host}:{self.port})"


@dataclass
class CommandResult:
    """Exit status and output of one remote command."""

    rc: int
    stdout: str
    stderr: str


def known_hosts_from_args(args: str | None) -> str | None:
    """The UserKnownHostsFile named in ansible_ssh_common_args / ansible_ssh_extra_args."""
    if not args:
        return None
    tokens = shlex.split(str(args))
    for i, tok in enumerate(tokens):
        opt = (
            tok[2:]
            if tok.startswith("-o") and len(tok) > 2
            else (tokens[i + 1] if tok == "-o" and i + 1 < len(tokens) else "")
        )
        key, _, value = opt.partition("=")
        if key.strip().lower() == "userknownhostsfile" and value.strip():
            return value.strip().split()[0]
    return None


def target_from_hostvars(name: str, hostvars: dict[str, Any]) -> SshTarget:
    """An SshTarget from a host's Ansible variables."""
    known = known_hosts_from_args(
        " ".join(str(hostvars.get(k) or "") for k in ("ansible_ssh_common_args", "ansible_ssh_extra_args"))
    )
    key = hostvars.get("ansible_ssh_private_key_file") or hostvars.get("ansible_private_key_file")
    return SshTarget(name=name, host=str(hostvars.get("ansible_host", name)),
                     port=int(hostvars.get("ansible_port", 22)),
                     user=str(hostvars.get("ansible_user", "root")), key_file=key, known_hosts=known)


def connect(target: SshTarget, timeout: float = 10.0) -> paramiko.SSHClient:
    """An authenticated SSH client; raises HostError saying what failed (refused, key, host key, timeout)."""
    client = paramiko.SSHClient()
    try:
        if target.known_hosts:
            client.load_host_keys(target.known_hosts)
        else:
            client.load_system_host_keys()
    except (OSError, paramiko.SSHException) as exc:
        raise HostError(f"cannot read known_hosts: {exc}", where=target.where,
                        fix="point UserKnownHostsFile at a readable known_hosts file") from exc
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(target.host, port=target.port, username=target.user, key_filename=target.key_file,
                       timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
                       allow_agent=target.key_file is None, look_for_keys=target.key_file is None)
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostError("host key mismatch: the host presented a different key than known_hosts pins "
                        "(possible man-in-the-middle, or the host was reinstalled)", where=target.where,
                        fix="verify the new key out of band, then update "
                            f"{target.known_hosts or 'known_hosts'}") from exc
    except paramiko.AuthenticationException as exc:
        client.close()
        raise HostError(f"SSH authentication failed for {target.user}: {exc}", where=target.where,
                        fix="check ansible_user and ansible_ssh_private_key_file (the key must be in the "
                            "host's authorized_keys)") from exc
    except paramiko.SSHException as exc:
        client.close()
        if "not found in known_hosts" in str(exc):
            raise HostError("unknown host key: the host is not in known_hosts", where=target.where,
                            fix=f"add its key to {target.known_hosts or '~/.ssh/known_hosts'} "
                                "(ssh-keyscan, then verify it)") from exc
        raise HostError(f"SSH failed: {exc}", where=target.where) from exc
    except TimeoutError as exc:
        client.close()
        raise HostError(f"SSH connection timed out after {timeout:g}s", where=target.where,
                        fix="check the address, port and firewalls") from exc
    except OSError as exc:
        client.close()
        raise HostError(f"cannot connect: {exc.strerror or exc}", where=target.where,
                        fix="check that sshd runs on the host and that ansible_host/ansible_port are right"
                        ) from exc
    return client


def run(client: paramiko.SSHClient, command: str, *, timeout: float = 60.0, where: str = "host",
        stdin: bytes | None = None) -> CommandResult:
    """Run `command`; raises HostError when it does not finish within `timeout` seconds."""
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise HostError("SSH session is closed", where=where)
    channel = transport.open_session(timeout=timeout)
    channel.settimeout(timeout)
    channel.exec_command(command)
    if stdin:
        channel.sendall(stdin)
    channel.shutdown_write()
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + timeout
    while True:
        while channel.recv_ready():
            out += channel.recv(65536)
        while channel.recv_stderr_ready():
            err += channel.recv_stderr(65536)
        if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
            break
        if time.monotonic() > deadline:
            channel.close()
            raise HostError(f"command timed out after {timeout:g}s: {command[:200]}", where=where,
                            fix="the host may be overloaded or the command hangs (e.g. a hard NFS mount)")
        time.sleep(0.01)
    rc = channel.recv_exit_status()
    return CommandResult(rc, out.decode(errors="replace"), err.decode(errors="replace"))


def run_on(target: SshTarget, command: str, *, timeout: float = 60.0) -> CommandResult:
    """Connect, run one command, disconnect."""
    client = connect(target, timeout=min(timeout, 15.0))
    try:
        return run(client, command, timeout=timeout, where=target.where)
    finally:
        client.close()
