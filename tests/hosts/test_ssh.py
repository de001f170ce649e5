"""labctl.hosts.ssh: host keys verified, clear errors for refused, bad key, host key mismatch and timeouts."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import paramiko
import pytest

from labctl.errors import HostError
from labctl.hosts import ssh

TARGET = ssh.SshTarget(name="gpu1", host="127.0.0.11", port=2222, user="root", key_file="/k",
                       known_hosts="/kh")


def _connect_raising(exc):
    client = mock.MagicMock(spec=paramiko.SSHClient)
    client.connect.side_effect = exc
    return mock.patch.object(ssh.paramiko, "SSHClient", return_value=client), client


@pytest.mark.parametrize(("exc", "words"), [
    (paramiko.ssh_exception.NoValidConnectionsError({("127.0.0.11", 2222): ConnectionRefusedError(111, "x")}),
     "cannot connect"),
    (ConnectionRefusedError(111, "Connection refused"), "Connection refused"),
    (paramiko.AuthenticationException("Authentication failed."), "authentication failed"),
    (paramiko.BadHostKeyException("127.0.0.11", mock.MagicMock(), mock.MagicMock()), "host key mismatch"),
    (paramiko.SSHException("Server '[127.0.0.11]:2222' not found in known_hosts"), "unknown host key"),
    (TimeoutError("timed out"), "timed out"),
])
def test_connect_failures_are_clear(exc, words):
    patch, client = _connect_raising(exc)
    with patch, pytest.raises(HostError) as err:
        ssh.connect(TARGET)
    assert words in str(err.value)
    assert "gpu1 (root@127.0.0.11:2222)" in str(err.value)
    client.set_missing_host_key_policy.assert_called_once()
    policy = client.set_missing_host_key_policy.call_args.args[0]
    assert isinstance(policy, paramiko.RejectPolicy)
    client.close.assert_called()


def test_command_timeout():
    channel = mock.MagicMock()
    channel.recv_ready.return_value = False
    channel.recv_stderr_ready.return_value = False
    channel.exit_status_ready.return_value = False
    client = mock.MagicMock()
    client.get_transport.return_value.open_session.return_value = channel
    with pytest.raises(HostError, match="timed out after 0.2s"):
        ssh.run(client, "sleep 100", timeout=0.2, where="gpu1")
    channel.close.assert_called_once()


def test_target_from_hostvars_reads_ansible_settings():
    t = ssh.target_from_hostvars("gpu1", {
        "ansible_host": "10.0.0.5", "ansible_port": 2200, "ansible_user": "lab",
        "ansible_ssh_private_key_file": "/keys/id", "ansible_ssh_common_args":
            "-o UserKnownHostsFile=/lab/known_hosts -o StrictHostKeyChecking=yes"})
    assert (t.host, t.port, t.user, t.key_file, t.known_hosts) == ("10.0.0.5", 2200, "lab", "/keys/id",
                                                                      "/lab/known_hosts")


def _target(lab, host, **kw):
    return ssh.SshTarget(name=host["name"], host=host["address"], port=host["port"], user="root",
                         key_file=lab["ssh_key"], known_hosts=kw.get("known_hosts", lab["known_hosts"]))


def test_real_sshd_runs_commands_and_refuses_a_changed_key(sim_lab, tmp_path):
    host, other = sim_lab["hosts"]
    result = ssh.run_on(_target(sim_lab, host), "echo $LABCTL_SIM_HOST_NAME; exit 3")
    assert (result.rc, result.stdout.strip()) == (3, host["name"])
    lines = Path(sim_lab["known_hosts"]).read_text().splitlines()
    forged = next(x for x in lines if str(other["port"]) in x).split(" ", 1)[1]
    bad = tmp_path / "known_hosts"
    bad.write_text(f"[{host['address']}]:{host['port']} {forged}\n")
    with pytest.raises(HostError, match="host key mismatch"):
        ssh.run_on(_target(sim_lab, host, known_hosts=str(bad)), "true")
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(HostError, match="unknown host key"):
        ssh.run_on(_target(sim_lab, host, known_hosts=str(empty)), "true")
