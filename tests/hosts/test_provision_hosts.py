"""End to end on the simulated lab (2 real sshd hosts + the ONTAP simulator): `labctl provision` (storage +
hosts), idempotence (changed=0), status with effective mount options, an unreachable host, a server-capped
wsize, and `labctl teardown --yes` back to the seeded state."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from labctl.lab import hosts_phase
from tests.hosts.simlab import start_lab

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from start_lab(tmp_path_factory.mktemp("provlab"), hosts=2, mounts=True)


def labctl(lab, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "labctl", "-i", lab["inventory"], *args],
                          capture_output=True, text=True, timeout=timeout)


def ssh(lab, host, command):
    return subprocess.run(["ssh", "-i", lab["ssh_key"], "-o", f"UserKnownHostsFile={lab['known_hosts']}",
                           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(host["port"]),
                           f"root@{host['address']}", command], capture_output=True, text=True, timeout=120)


def rest(lab, method, path, body=None):
    o = lab["ontap"]
    token = base64.b64encode(f"admin:{Path(o['password_file']).read_text().strip()}".encode()).decode()
    data = json.dumps(body).encode() if body else None
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    req = urllib.request.Request(o["url"] + path, method=method, data=data, headers=headers)
    ctx = ssl.create_default_context(cafile=o["ca_file"])
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        text = r.read()
    return json.loads(text) if text else {}


def view(host, name="mounts"):
    path = Path(host["root"]) / "proc" / ("mounts" if name == "mounts" else "self/mountstats")
    return path.read_text()


@pytest.fixture(scope="module")
def provisioned(lab):
    """The lab after one `labctl provision` (the tests that need it run alone too, e.g. with -k)."""
    return labctl(lab, "provision")


def test_provision_mounts_verifies_and_installs(lab, provisioned):
    out = provisioned
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    data_dir = Path(lab["ontap"]["data_dir"]) / "llm-lab" / "fg_llm"
    assert (data_dir / "data" / "oasst" / "train_full.pq").exists()  # the data set landed on the volume
    for host in lab["hosts"]:
        line = next(x for x in view(host).splitlines() if " /mnt/fg_llm " in x)
        assert line.startswith("127.0.0.1:/fg_llm /mnt/fg_llm nfs4 ") and "nconnect=16" in line
        stats = view(host, "mountstats")
        assert stats.count("\txprt:\ttcp") == 16 and "pnfs=LAYOUT_NFSV4_1_FILES" in stats
        root = Path(host["root"])
        # the inventory's defaults: /opt/labctl/h2o-llmstudio and its .venv, in this host's own /opt
        assert (root / "opt" / "labctl" / "h2o-llmstudio" / ".venv" / "bin" / "python").exists()
        assert subprocess.run(["git", "-C", str(root / "opt/labctl/h2o-llmstudio"), "describe",
                               "--tags"], capture_output=True, text=True).stdout.strip() == "v1.2.0"
    runs = Path(lab["inventory"]).parent / ".labctl" / "inventory" / "runs"
    assert len(list(runs.glob("*-provision-hosts/artifacts/*/job_events/*.json"))) > 10


def _counter(stats: str, key: str) -> list[int]:
    line = next(x for x in stats.splitlines() if x.strip().startswith(key))
    return [int(v) for v in line.split(":", 1)[1].split()]


def test_mount_counts_the_real_bytes_moved(lab, provisioned):
    host = lab["hosts"][0]
    before = view(host, "mountstats")
    out = ssh(lab, host, "dd if=/dev/zero of=/mnt/fg_llm/probe bs=1M count=3 conv=fsync status=none && "
                         "cat /mnt/fg_llm/probe > /dev/null && rm /mnt/fg_llm/probe && sleep 1.2 && "
                         "nfsiostat /mnt/fg_llm && mount -t nfs4 -o vers=4.1 127.0.0.1:/nope /mnt; "
                         "echo rc=$?")
    after = view(host, "mountstats")
    written = _counter(after, "bytes:")[5] - _counter(before, "bytes:")[5]
    writes = _counter(after, "WRITE:")[0] - _counter(before, "WRITE:")[0]
    assert written >= 3 << 20 and 3 <= writes <= 4  # wsize=1048576: one WRITE RPC per MiB
    assert sum(_counter(after, "REMOVE:")) > sum(_counter(before, "REMOVE:"))
    assert "127.0.0.1:/fg_llm mounted on /mnt/fg_llm:" in out.stdout and "write:" in out.stdout
    assert "rc=32" in out.stdout
    assert "mount.nfs4: mounting 127.0.0.1:/nope failed, reason given by server: No such file or directory" \
        in out.stderr
    assert not (Path(lab["ontap"]["data_dir"]) / "llm-lab" / "fg_llm" / "probe").exists()


def test_status_json_shows_effective_mounts(lab, provisioned):
    out = labctl(lab, "status", "--output", "json")
    assert out.returncode == 0, out.stderr[-2000:]
    hosts = json.loads(out.stdout)["hosts"]
    for host in lab["hosts"]:
        h = hosts[host["name"]]
        assert h["mounted"] and h["problems"] == [] and h["llmstudio"] == "v1.2.0"
        eff = h["effective"]
        assert (eff["vers"], eff["rsize"], eff["wsize"], eff["nconnect"], eff["transports"]) == \
            ("4.1", 1048576, 1048576, 16, 16)
        assert eff["pnfs"] == "LAYOUT_NFSV4_1_FILES" and f"clientaddr={host['address']}" in eff["options"]


def test_second_run_changes_nothing_and_an_unreachable_host_is_reported_alone(lab, provisioned, tmp_path):
    inv = tmp_path / "inventory"
    shutil.copytree(lab["inventory"], inv)
    hosts_yml = yaml.safe_load((inv / "hosts.yml").read_text())
    members = hosts_yml["all"]["children"]["gpu_hosts"]["hosts"]
    members["gpu9"] = {**members["gpu1"], "ansible_host": "127.0.0.19"}  # nothing listens there
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts_yml))
    state = tmp_path / "state"
    with pytest.raises(hosts_phase.HostsPhaseError) as err:
        hosts_phase.provision_hosts(inv, state, {"labctl_nfs_server": "127.0.0.1"})
    summary = err.value.summary
    assert summary["failed"] == ["gpu9"]
    assert summary["hosts"]["gpu9"]["status"] == "unreachable"
    assert "127.0.0.19" in str(err.value) and "Connection refused" in str(err.value)
    for name in ("gpu1", "gpu2"):
        assert summary["hosts"][name]["status"] == "ok"
        assert summary["hosts"][name]["changed"] == 0, summary["hosts"][name]
        assert summary["hosts"][name]["steps"] == {"prechecks": "ok", "mount": "ok", "llmstudio": "ok"}
    # the three steps were the plays of one ansible-playbook run; with nothing to change, pip did not run,
    # no facts were gathered (the NFS client is not installed here) and the mount was checked once
    (run,) = summary["runs"]
    assert list((state / "runs").iterdir()) == [Path(run)]
    results = _task_results(Path(run))
    for name in ("gpu1", "gpu2"):
        venv = results[("Make LLM Studio's venv and install the requirements into it", name)]
        assert venv["event"] == "runner_on_ok" and venv["res"]["installed"] is False
        assert not venv["res"]["changed"]
        facts = results[("Learn the OS family (to install the NFS client)", name)]
        assert facts["event"] == "runner_on_skipped"
        assert ("Gathering Facts", name) not in results
        verify = "Verify the effective mount (vers, rsize/wsize granted, nconnect transports, pNFS layout)"
        assert results[(verify, name)]["event"] == "runner_on_skipped"


def _task_results(run: Path) -> dict[tuple[str, str], dict]:
    """(task, host) -> the runner_on_* event data of one playbook run."""
    out = {}
    for path in run.glob("artifacts/*/job_events/*.json"):
        event = json.loads(path.read_text())
        data = event.get("event_data") or {}
        if event["event"].startswith("runner_on_") and event["event"] != "runner_on_start":
            out[(data.get("task"), data.get("host"))] = {"event": event["event"],
                                                          "res": data.get("res") or {}}
    return out


def test_capped_wsize_fails_verification_naming_the_svm_setting(lab, provisioned, tmp_path):
    inv, state = Path(lab["inventory"]), tmp_path / "state"
    svm = rest(lab, "GET", "/api/svm/svms?name=llm-lab")["records"][0]["uuid"]
    hosts_phase.teardown_hosts(inv, state, {"labctl_nfs_server": "127.0.0.1"})
    rest(lab, "PATCH", f"/api/protocols/nfs/services/{svm}", {"transport": {"tcp_max_transfer_size": 65536}})
    try:
        with pytest.raises(hosts_phase.HostsPhaseError) as err:
            hosts_phase.provision_hosts(inv, state, {"labctl_nfs_server": "127.0.0.1"})
        for name in ("gpu1", "gpu2"):
            e = err.value.summary["hosts"][name]
            assert e["steps"]["mount"] == "failed" and e["steps"]["llmstudio"] == "not run"
            assert "wsize=65536 granted, 1048576 asked" in e["error"]
            assert "tcp-max-xfer-size" in e["error"] and "SVM llm-lab" in e["error"]
    finally:
        rest(lab, "PATCH", f"/api/protocols/nfs/services/{svm}",
             {"transport": {"tcp_max_transfer_size": 1048576}})


def test_teardown_leaves_hosts_and_cluster_as_seeded(lab):
    out = labctl(lab, "teardown", "--yes")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for host in lab["hosts"]:
        root = Path(host["root"])
        assert " /mnt/fg_llm " not in view(host) and "fg_llm" not in view(host, "mountstats")
        assert not (root / "mnt" / "fg_llm").exists()
        assert (root / "etc" / "fstab").read_text() == Path("/etc/fstab").read_text()
        assert not list((root / "nfs").glob("*/request.json"))
    volumes = [v["name"] for v in rest(lab, "GET", "/api/storage/volumes")["records"]]
    assert "fg_llm" not in volumes
    again = labctl(lab, "teardown", "--yes")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
