"""The simulated lab's hosts: real sshd, pinned host keys, private mount namespaces, shims on the path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def ssh(lab: dict, host: dict, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", "-i", lab["ssh_key"], "-o", f"UserKnownHostsFile={lab['known_hosts']}",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(host["port"]),
         f"root@{host['address']}", command], capture_output=True, text=True, timeout=timeout)


def test_lab_json_and_inventory(sim_lab):
    lab_dir = Path(sim_lab["dir"])
    assert json.loads((lab_dir / "lab.json").read_text())["hosts"] == sim_lab["hosts"]
    assert [h["address"] for h in sim_lab["hosts"]] == ["127.0.0.11", "127.0.0.12"]
    inventory = (lab_dir / "inventory" / "group_vars" / "all.yml").read_text()
    password = Path(sim_lab["ontap"]["password_file"]).read_text().strip()
    assert password not in inventory and "StrictHostKeyChecking=yes" in inventory
    assert "StrictHostKeyChecking=no" not in inventory
    hosts_yml = (lab_dir / "inventory" / "hosts.yml").read_text()
    assert "labctl_proc_mountstats" in hosts_yml and "gpu_hosts" in hosts_yml


def test_each_host_has_its_env_namespace_and_shims(sim_lab):
    seen_ns = set()
    for host in sim_lab["hosts"]:
        out = ssh(sim_lab, host, "echo $LABCTL_SIM_HOST_ROOT; readlink /proc/self/ns/mnt; command -v "
                                 "nvidia-smi nfsiostat; ls /usr/sbin/mount.nfs4; nvidia-smi -L | wc -l")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.split()
        assert lines[0] == host["root"]
        seen_ns.add(lines[1])
        assert "/usr/sbin/mount.nfs4" in lines and lines[-1] == "8"
    assert len(seen_ns) == 2
    # the real machine is untouched: no NFS helper outside the hosts' namespaces
    assert not Path("/usr/sbin/mount.nfs4").exists()



def test_a_host_has_its_own_bashrc_not_the_controllers(sim_lab):
    """bash sources ~/.bashrc for each command sshd runs: the controller's (pyenv/conda init) stays out."""
    home_rc = Path.home() / ".bashrc"
    if not home_rc.is_file():
        pytest.skip("this machine has no ~/.bashrc to hide")
    host = sim_lab["hosts"][0]
    out = ssh(sim_lab, host, "cat ~/.bashrc")
    assert out.returncode == 0, out.stderr
    assert out.stdout == (Path(host["root"]) / "etc" / "bashrc").read_text()
    assert "case $- in *i*)" in out.stdout
    assert home_rc.read_text() != out.stdout  # outside the namespace the controller's file is untouched

def test_host_key_is_verified(sim_lab, tmp_path):
    host = sim_lab["hosts"][0]
    other = sim_lab["hosts"][1]
    wrong = tmp_path / "known_hosts"
    # gpu2's key claimed for gpu1's address: ssh must refuse (no StrictHostKeyChecking=no anywhere)
    line = next(x for x in Path(sim_lab["known_hosts"]).read_text().splitlines() if str(other["port"]) in x)
    wrong.write_text(line.replace(f"[{other['address']}]:{other['port']}",
                                  f"[{host['address']}]:{host['port']}") + "\n")
    out = subprocess.run(["ssh", "-i", sim_lab["ssh_key"], "-o", f"UserKnownHostsFile={wrong}",
                          "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(host["port"]),
                          f"root@{host['address']}", "true"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 255
    assert "HOST IDENTIFICATION HAS CHANGED" in out.stderr or "verification failed" in out.stderr


def test_prechecks_command_reports_every_host(sim_lab):
    out = subprocess.run([sys.executable, "-m", "labctl", "-i", sim_lab["inventory"], "prechecks",
                          "--output", "json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout)
    for host in sim_lab["hosts"]:
        checks = summary["hosts"][host["name"]]["prechecks"]
        assert checks["gpus"]["value"] == 8 and checks["kernel"]["ok"] and checks["privilege"]["ok"]
        assert checks["nfs_client"]["ok"] and set(checks) >= {"os_family", "bpftrace", "time_sync"}


def test_ontap_only_lab_and_idempotent_down(tmp_path):
    from labctl.testlab.lab import is_running, read_lab, sim_down, sim_up
    from tests.hosts.simlab import skip_reason

    if skip_reason():
        pytest.skip(skip_reason())
    lab = sim_up(tmp_path / "lab", 0)
    try:
        assert lab["hosts"] == [] and Path(lab["inventory"], "group_vars", "all.yml").exists()
        assert is_running(read_lab(tmp_path / "lab"))
        # the storage side needs no editing of the inventory: it exports to this machine
        from labctl.cli import main

        assert main(["-i", lab["inventory"], "provision", "--only", "storage"]) == 0
        assert main(["-i", lab["inventory"], "teardown", "--yes", "--only", "storage"]) == 0
    finally:
        assert sim_down(tmp_path / "lab") == ["ontap"]
    assert sim_down(tmp_path / "lab") == [] and not is_running(read_lab(tmp_path / "lab"))


# The path keys with defaults: the simulated lab runs on them, as a new user's lab does (issue: a run
# looked for LLM Studio where provision had not put it, and no simulated-lab test could see it).
DEFAULTED_PATHS = ("labctl_llmstudio_dir", "labctl_llmstudio_venv", "labctl_model_cache",
                   "labctl_host_workdir", "labctl_mount_path", "labctl_mount_options", "labctl_dataset_dir")


def test_the_inventory_leaves_every_path_to_its_default(sim_lab):
    files = sorted(Path(sim_lab["inventory"]).rglob("*.yml"))
    assert len(files) >= 2
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not [k for k in DEFAULTED_PATHS if k in text], path


def test_a_host_has_its_own_opt_over_this_machines(sim_lab):
    host = sim_lab["hosts"][0]
    res = ssh(sim_lab, host, "mkdir -p /opt/labctl-probe && touch /opt/labctl-probe/x && ls /opt")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "labctl-probe" in out.split()
    assert not Path("/opt/labctl-probe").exists()  # written on the host's own layer only
    assert (Path(host["root"]) / "opt" / "labctl-probe" / "x").exists()
    assert {p.name for p in Path("/opt").iterdir()} <= set(out.split())  # this machine's /opt shows through
