"""Issue #16 on the GPU hosts (simulated lab, root; 2 real sshd hosts, real playbooks, real teardown): each
host records what labctl made on it, and teardown undoes only that. A mount labctl never made is left alone
with its data and its users; `--remove-install` removes only directories labctl created; teardown refuses
while a run is active, and `--force` stops only the run's processes; two provisions never run the hosts
phase at once; a failed mount says why; Ansible's host-pattern warning stays off the screen."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl.fileops import pid_alive
from labctl.testlab.sshhost import processes_in_namespace
from tests.hardening.util import clean_output, emulated_experiment, wait_for
from tests.hosts.simlab import is_provisioned, start_lab

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Any:
    yield from start_lab(tmp_path_factory.mktemp("ownlab"), hosts=2, mounts=True)


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ownstate") / "state"


@pytest.fixture
def provisioned(lab, state) -> None:
    """The lab provisioned; as an earlier test left it when it did (`test_two_concurrent_provisions...`
    proves a provision), else provisioned here: each test also runs alone."""
    if is_provisioned(lab, state):
        return
    out = labctl(lab["inventory"], state, "provision")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert is_provisioned(lab, state)


@pytest.fixture
def unmounted(lab, state) -> None:
    """The cluster provisioned, no host mounted (the hosts' teardown, a playbook, only where one is)."""
    steps = [("provision", "--only", "storage")]
    if any(_mounted(host) or _recorded_mounts(host) for host in lab["hosts"]):
        steps.append(("teardown", "--yes", "--only", "hosts"))
    for args in steps:
        out = labctl(lab["inventory"], state, *args)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert not any(_mounted(host) or _recorded_mounts(host) for host in lab["hosts"])


def _recorded_mounts(host: dict[str, Any]) -> dict[str, str]:
    """The mounts the host's record says labctl made on it."""
    record = Path(host["root"]) / "var-lib" / "labctl" / "host.json"
    return json.loads(record.read_text())["mounts"] if record.exists() else {}


def _env(state: Path) -> dict[str, str]:
    return {**os.environ, "LABCTL_STATE_DIR": str(state), "COLUMNS": "200"}


def labctl(inventory: str | Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl", "-i", str(inventory), *args], env=_env(state),
                          capture_output=True, text=True, timeout=600)


def ssh(lab: dict[str, Any], host: dict[str, Any], command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", "-i", lab["ssh_key"], "-o", f"UserKnownHostsFile={lab['known_hosts']}",
                           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(host["port"]),
                           f"root@{host['address']}", command], capture_output=True, text=True, timeout=120)


def _pids(host: dict[str, Any], needle: bytes) -> list[int]:
    """Processes of this simulated host whose command line holds `needle`."""
    found = []
    for pid in processes_in_namespace(host["mount_ns"]):
        try:
            if needle in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def _start_bystander(lab: dict[str, Any], host: dict[str, Any], cwd: str, seconds: int) -> int:
    """Someone else's process on the host, working in `cwd` (`sleep SECONDS`, a unique marker)."""
    out = ssh(lab, host, f"cd {cwd} && (setsid sleep {seconds} </dev/null >/dev/null 2>&1 &)")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: _pids(host, f"sleep\0{seconds}".encode()), 20)
    return _pids(host, f"sleep\0{seconds}".encode())[0]


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _mounted(host: dict[str, Any], path: str = "/mnt/fg_llm") -> list[str]:
    """The sources mounted on `path` in the host's namespace (its real mount table), bottom first."""
    pid = processes_in_namespace(host["mount_ns"])[0]
    lines = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    return [ln.split(" - ")[1].split()[1] for ln in lines if ln.split()[4] == path]


def _inventory_with(lab: dict[str, Any], tmp_path: Path, **keys: Any) -> Path:
    inv = tmp_path / "inventory"
    shutil.copytree(lab["inventory"], inv)
    all_yml = inv / "group_vars" / "all.yml"
    all_yml.write_text(yaml.safe_dump({**yaml.safe_load(all_yml.read_text()), **keys}))
    return inv


def test_teardown_leaves_a_mount_it_never_made_with_its_data_and_users(lab, state):
    """Item 1: with an empty ledger, a tmpfs the user mounted on labctl_mount_path is not labctl's."""
    host = lab["hosts"][0]
    out = ssh(lab, host, "mkdir -p /mnt/fg_llm && mount -t tmpfs userdata /mnt/fg_llm && "
                         "echo important > /mnt/fg_llm/important.txt")
    assert out.returncode == 0, out.stderr
    sleeper = _start_bystander(lab, host, "/mnt/fg_llm", 3001)
    try:
        result = labctl(lab["inventory"], state, "teardown", "--yes", "--only", "hosts")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        clean_output(result.stdout, result.stderr)
        assert pid_alive(sleeper)
        assert _mounted(host) == ["userdata"]
        assert ssh(lab, host, "cat /mnt/fg_llm/important.txt").stdout == "important\n"
        text = " ".join((result.stdout + result.stderr).split())
        assert "/mnt/fg_llm holds userdata (tmpfs), which labctl did not mount: left alone" in text, text
        # provision refuses it too, naming it
        provision = labctl(lab["inventory"], state, "provision", "--only", "hosts")
        assert provision.returncode == 1 and "already has userdata mounted" in provision.stderr
        assert pid_alive(sleeper) and _mounted(host) == ["userdata"]
    finally:
        _kill(sleeper)
        wait_for(lambda: not pid_alive(sleeper), 20)
        ssh(lab, host, "umount /mnt/fg_llm; rmdir /mnt/fg_llm")


def test_remove_install_removes_only_directories_labctl_created(lab, state, tmp_path):
    """Item 2: labctl_model_cache / labctl_llmstudio_dir pointing at directories labctl did not create."""
    host = lab["hosts"][0]
    assert ssh(lab, host, "mkdir -p /var/tmp/models/llama /var/tmp/mine && "
                          "echo w > /var/tmp/models/llama/weights.bin").returncode == 0
    inv = _inventory_with(lab, tmp_path, labctl_model_cache="/var/tmp/models",
                          labctl_llmstudio_dir="/var/tmp/mine", labctl_llmstudio_venv="/var/tmp/mine/.venv")
    try:
        result = labctl(inv, tmp_path / "state", "teardown", "--yes", "--only", "hosts", "--remove-install")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        kept = ssh(lab, host, "cat /var/tmp/models/llama/weights.bin && test -d /var/tmp/mine")
        assert kept.stdout == "w\n", kept.stderr
    finally:
        ssh(lab, host, "rm -rf /var/tmp/models /var/tmp/mine")


def test_two_concurrent_provisions_never_stack_mounts(lab, state):
    """Item 11: the hosts phase holds the lab's lock, as the storage phase does."""
    earlier = set(state.glob("runs/*-provision-hosts"))  # the state dir is shared by this module's tests
    first = subprocess.Popen([sys.executable, "-m", "labctl", "-i", lab["inventory"], "provision"],
                             env=_env(state), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the first provision is in its hosts phase (under the lab's lock) once its own prechecks run starts
        wait_for(lambda: set(state.glob("runs/*-provision-hosts")) - earlier or first.poll() is not None,
                 300)
        second = labctl(lab["inventory"], state, "provision", "--only", "hosts")
        out, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, out[-3000:] + err[-3000:]
    assert second.returncode == 1, second.stdout[-2000:] + second.stderr[-2000:]
    assert "another labctl run holds the lab's lock" in second.stderr
    clean_output(second.stdout, second.stderr)
    for host in lab["hosts"]:
        assert _mounted(host) == ["127.0.0.1:/fg_llm"], host["name"]
        record = json.loads((Path(host["root"]) / "var-lib" / "labctl" / "host.json").read_text())
        assert record["mounts"] == {"/mnt/fg_llm": "127.0.0.1:/fg_llm"} and "/mnt/fg_llm" in record["dirs"]


def _experiment(path: Path) -> Path:
    return emulated_experiment(path, "busy", epochs=3, steps=100, compute_s=0.5)


def _host_status(host: dict[str, Any], run_id: str) -> dict[str, Any]:
    path = Path(host["root"]) / "var-tmp" / "labctl" / run_id / host["name"] / "status.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def test_teardown_refuses_during_a_run_and_force_stops_only_the_run(lab, state, provisioned, tmp_path):
    """Item 4: teardown during training refuses; --force stops the run's own processes, never a bystander's,
    and unmounts lazily under the bystander."""
    host = lab["hosts"][0]
    runs = tmp_path / "runs"
    started = labctl(lab["inventory"], state, "run", str(_experiment(tmp_path / "e.yaml")), "--runs-dir",
                     str(runs), "--detach")
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
    (bundle,) = runs.iterdir()
    run_id = bundle.name
    wait_for(lambda: _host_status(host, run_id).get("state") == "training", 120)
    bystander = _start_bystander(lab, host, "/mnt/fg_llm", 3002)
    try:
        refused = labctl(lab["inventory"], state, "teardown", "--yes", "--only", "hosts")
        assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr[-3000:]
        clean_output(refused.stdout, refused.stderr)
        assert "a labctl run is active on this host" in refused.stderr and run_id in refused.stderr
        assert _host_status(host, run_id).get("state") == "training" and _pids(host, run_id.encode())
        assert _mounted(host) == ["127.0.0.1:/fg_llm"] and pid_alive(bystander)

        forced = labctl(lab["inventory"], state, "teardown", "--yes", "--only", "hosts", "--force")
        assert forced.returncode == 0, forced.stdout[-3000:] + forced.stderr[-3000:]
        text = " ".join((forced.stdout + forced.stderr).split())
        assert f"stopped labctl run {run_id}" in text and "left running" in text and "sleep 3002" in text
        for each in lab["hosts"]:
            assert _pids(each, run_id.encode()) == [], each["name"]  # agent, monitors, trainer: all gone
            assert _host_status(each, run_id).get("state") == "stopped", each["name"]
            assert _mounted(each) == []
        assert pid_alive(bystander)
    finally:
        _kill(bystander)
    wait_for(lambda: " /mnt/fg_llm " not in (Path(host["root"]) / "proc" / "mounts").read_text(), 30)
    again = labctl(lab["inventory"], state, "teardown", "--yes", "--only", "hosts", "--remove-install")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    for each in lab["hosts"]:  # what labctl created is removed; its record is empty again
        root = Path(each["root"])
        assert not (root / "mnt" / "fg_llm").exists()
        assert not (root / "var-tmp" / "labctl-llmstudio" / "h2o-llmstudio").exists()
        record = json.loads((root / "var-lib" / "labctl" / "host.json").read_text())
        assert (record["mounts"], record["dirs"], record["installs"], record["fstab"]) == ({}, [], [], {})


def test_a_failed_mount_says_why(lab, state, unmounted, tmp_path):
    """Item 17: mount.nfs's own words, not only "non-zero return code"."""
    inv = _inventory_with(lab, tmp_path, labctl_flexgroup_junction="/nope")
    result = labctl(inv, state, "provision", "--only", "hosts")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    clean_output(result.stdout, result.stderr)
    text = " ".join(result.stderr.split())
    assert "mount exited 32" in text and "mounting 127.0.0.1:/nope failed" in text, text
    cleanup = labctl(inv, state, "teardown", "--yes", "--only", "hosts")
    assert cleanup.returncode == 0, cleanup.stdout[-3000:] + cleanup.stderr[-3000:]


def test_an_unmatched_host_pattern_is_reported_once_without_ansible_warning(lab, state, tmp_path):
    """Item 17: Ansible's "Could not match supplied host pattern" stays off the screen."""
    experiment = tmp_path / "e.yaml"
    experiment.write_text(yaml.safe_dump({"trainer": "emulate", "hosts": "nosuch"}))
    result = labctl(lab["inventory"], state, "run", str(experiment), "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "matches no host" in result.stderr and "WARNING" not in result.stdout + result.stderr
