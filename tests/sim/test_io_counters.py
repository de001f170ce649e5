"""The simulator's I/O counters driven by real I/O: placement over the FlexGroup's constituents, the FUSE
layer's reports (and what it does when the simulator is gone), and a real host writing and reading through
its mount, checked with the netapp-ontap SDK (statistics, metric, the /metrics history)."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from netapp_ontap import HostConnection
from netapp_ontap.resources import Aggregate, IpInterface, Node, Volume, VolumeMetrics

from labctl.sim.models.io_stats import IoStats, blank, rate_block
from tests.hosts.simlab import fuse_reason, skip_reason, start_lab
from tests.sim.test_mount import mount, provision

MIB = 1 << 20


def report(raw, directory: str, files: dict, server: str = "127.0.0.1", pnfs: bool = True):
    body = {"directory": directory, "server": server, "client": "127.0.0.1", "vers": "4.1", "pnfs": pnfs,
            "files": files}
    answer = raw("POST", "/_sim/nfs/io", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def constituents(raw) -> dict[str, dict]:
    answer = raw("GET", "/api/storage/volumes?is_constituent=true&fields=statistics,aggregates,name").json()
    return {c["name"]: c for c in answer["records"]}


def written(record: dict) -> int:
    return record["statistics"]["throughput_raw"]["write"]


@pytest.fixture
def mounted(raw) -> str:
    svm_uuid = raw("GET", "/api/svm/svms?name=llm-lab").json()["records"][0]["uuid"]
    provision(raw, svm_uuid)
    status, answer = mount(raw)
    assert status == 200, answer
    return answer["directory"]


def test_placement_is_stable_spreads_and_sums_up(raw, mounted):
    one = {"write_bytes": MIB, "write_ops": 1, "write_us": 300}
    report(raw, mounted, {"/data/shard_007.bin": one})
    home = [n for n, c in constituents(raw).items() if written(c)]
    # the documented rule: sha256 of the path inside the FlexGroup, first 8 bytes big-endian, mod 16
    digest = int.from_bytes(hashlib.sha256(b"data/shard_007.bin").digest()[:8], "big")
    assert home == [f"fg_llm__{digest % 16 + 1:04d}"]
    report(raw, mounted, {f"/data/shard_{i:03d}.bin": one for i in range(64) if i != 7})
    first = {n: written(c) for n, c in constituents(raw).items()}
    assert len(first) == 16 and sum(first.values()) == 64 * MIB
    assert sum(1 for v in first.values() if v) >= 12  # 64 files over 16 constituents: spread, not piled up
    report(raw, mounted, {"/data/shard_007.bin": one})  # the same file again lands where it landed first
    second = {n: written(c) for n, c in constituents(raw).items()}
    assert [n for n in second if second[n] != first[n]] == home and second[home[0]] - first[home[0]] == MIB
    fg = raw("GET", "/api/storage/volumes?name=fg_llm&fields=statistics").json()["records"][0]["statistics"]
    assert fg["throughput_raw"]["write"] == 65 * MIB and fg["iops_raw"]["write"] == 65
    assert fg["latency_raw"]["write"] == 65 * 300 and fg["status"] == "ok"
    aggrs = raw("GET", "/api/storage/aggregates?fields=statistics,node").json()["records"]
    assert sum(a["statistics"]["throughput_raw"]["write"] for a in aggrs) == 65 * MIB
    per_aggr = {}
    for c in constituents(raw).values():
        per_aggr[c["aggregates"][0]["name"]] = per_aggr.get(c["aggregates"][0]["name"], 0) + written(c)
    assert {a["name"]: a["statistics"]["throughput_raw"]["write"] for a in aggrs} == per_aggr


def test_pnfs_data_goes_through_the_lif_on_the_owning_node_and_the_node_counts_it(raw, mounted):
    files = {f"/r{i}": {"read_bytes": (i + 1) * MIB, "read_ops": i + 1, "read_us": 30} for i in range(8)}
    report(raw, mounted, {**files, "/meta": {"other_ops": 5, "other_us": 50}})
    node_of = {a["uuid"]: a["node"]["name"]
               for a in raw("GET", "/api/storage/aggregates?fields=node").json()["records"]}
    per_node: dict[str, int] = {}
    for c in constituents(raw).values():
        node = node_of[c["aggregates"][0]["uuid"]]
        per_node[node] = per_node.get(node, 0) + c["statistics"]["throughput_raw"]["read"]
    assert len(per_node) == 2 and all(per_node.values())  # both nodes own some of the files
    lifs = raw("GET", "/api/network/ip/interfaces?fields=statistics,location").json()["records"]
    # lif_n1 is on cluster1-01, lif_n2 on cluster1-02: each carries the data of its node's constituents
    assert {lif["location"]["node"]["name"]: lif["statistics"]["throughput_raw"]["read"] for lif in lifs} \
        == per_node
    fg = raw("GET", "/api/storage/volumes?name=fg_llm&fields=statistics").json()["records"][0]["statistics"]
    assert fg["iops_raw"]["other"] == 5 and fg["iops_raw"]["read"] == 36 and fg["latency_raw"]["other"] == 50
    nodes = raw("GET", "/api/cluster/nodes?fields=statistics").json()["records"]
    assert all(n["statistics"]["processor_utilization_raw"] >= 30 for n in nodes)
    assert all(n["statistics"]["processor_utilization_base"] > 0 for n in nodes)


def test_history_holds_the_values_in_force_at_each_15s_grid_point():
    stats = IoStats(now=1000.0)
    for n, when in ((30, 1001.0), (15, 1004.0)):
        stats.count("volume:x", {**blank(), "write_bytes": n * MIB, "write_ops": n, "write_us": 20 * n}, when)
    assert stats.at(1005.0) == {} and stats.times == []  # 1005 has not passed yet: nothing sampled
    stats.count("volume:x", {**blank(), "read_bytes": MIB, "read_ops": 1, "read_us": 7}, now=1030.0)
    assert stats.times == [1005.0]  # the grid point after the first two reports, sampled when it had passed
    stats.advance(1100.0)
    assert stats.times == [1005.0, 1035.0]
    assert stats.at(1004.9) == {} and stats.at(1020.0)["volume:x"]["write_bytes"] == 45 * MIB
    assert stats.at(1035.0)["volume:x"]["read_bytes"] == MIB and stats.at(1035.0) == stats.at(1095.0)
    rates = rate_block(blank(), stats.at(1005.0)["volume:x"], 15)
    assert rates["throughput"]["write"] == 3 * MIB and rates["iops"]["write"] == 3
    assert rates["latency"]["write"] == 20 and rates["latency"]["total"] == 20  # µs per op


def test_bad_reports_are_refused_by_name(raw, mounted):
    answer = raw("POST", "/_sim/nfs/io", json={"directory": "/elsewhere", "server": "127.0.0.1", "files": {}})
    assert answer.status_code == 400 and "/elsewhere" in answer.json()["error"]["message"]
    answer = raw("POST", "/_sim/nfs/io", json={"directory": mounted, "server": "10.9.9.9", "files": {}})
    assert answer.status_code == 400 and "10.9.9.9" in answer.json()["error"]["message"]
    files = {"/ok": {"write_bytes": MIB}, "/bad": {"write_bytes": "lots"}}
    answer = raw("POST", "/_sim/nfs/io", json={"directory": mounted, "server": "127.0.0.1", "files": files})
    assert answer.status_code == 400 and answer.json()["error"]["target"] == "files./bad"
    fg = raw("GET", "/api/storage/volumes?name=fg_llm&fields=statistics").json()["records"][0]
    assert fg["statistics"]["throughput_raw"]["total"] == 0  # nothing of a refused batch counts
    answer = fg["uuid"]
    bad = raw("GET", f"/api/storage/volumes/{answer}/metrics?interval=2h")
    assert bad.status_code == 400 and bad.json()["error"]["target"] == "interval"


# --- the FUSE layer when the simulator is gone --------------------------------------------------------------
WRITER = """
import os, subprocess, sys, time
from labctl.testlab import nfsviews
state, mp, src = sys.argv[1:4]
daemon = subprocess.Popen([sys.executable, "-m", "labctl.testlab.nfsfuse", state],
                          stdout=open(state + "/daemon.log", "ab"), stderr=subprocess.STDOUT)
deadline = time.monotonic() + 30
while not nfsviews.is_fuse_mounted(mp):
    assert daemon.poll() is None and time.monotonic() < deadline, open(state + "/daemon.log").read()
    time.sleep(0.05)
start = time.monotonic()
with open(mp + "/through.bin", "wb") as fh:
    fh.write(os.urandom(2 << 20))
with open(mp + "/through.bin", "rb") as fh:
    data = fh.read()
spent = time.monotonic() - start
subprocess.run(["umount", mp], check=True)
daemon.wait(timeout=30)
print(len(data), os.path.getsize(src + "/through.bin"), round(spent, 2))
"""


def test_io_succeeds_and_the_fuse_log_says_what_was_dropped_when_the_simulator_is_down(tmp_path):
    reason = skip_reason() or fuse_reason()
    if reason:
        pytest.skip(reason)
    with socket.socket() as s:  # a port nobody listens on: the simulator is gone
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    host_root, source, mp, state = (tmp_path / n for n in ("host", "source", "mnt", "host/nfs/mnt"))
    for d in (source, mp, state):
        d.mkdir(parents=True)
    (host_root / "host.json").write_text(json.dumps({"ontap_url": f"https://127.0.0.1:{port}",
                                                     "address": "127.0.0.1"}))
    request = {"spec": "127.0.0.1:/fg_llm", "server": "127.0.0.1", "export": "/fg_llm", "mountpoint": str(mp),
               "directory": str(source), "client": "127.0.0.1", "host_root": str(host_root),
               "granted": {"vers": "4.1", "rsize": MIB, "wsize": MIB, "nconnect": 2, "pnfs": True,
                           "proto": "tcp", "hard": True, "sec": "sys"}, "requested": {},
               "mounted_at": time.time()}
    (state / "request.json").write_text(json.dumps(request))
    done = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c", WRITER,
                           str(state), str(mp), str(source)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    read, stored, spent = done.stdout.split()
    assert int(read) == int(stored) == 2 * MIB
    log = (state / "daemon.log").read_text()
    assert "nfsfuse: I/O report: simulator unreachable or refusing (" in log
    assert log.count("dropping batches until it answers") == 1  # said once, not once per batch
    assert "at unmount: dropped" in log and f"{2 * 2 * MIB} bytes" in log  # 2 MiB written + 2 MiB read


# --- a real host writing through its mount -----------------------------------------------------------------
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from tests.run.simprep import MOUNT_OPTS, _rest_provision

    started = start_lab(tmp_path_factory.mktemp("iolab"), hosts=1, mounts=True)
    lab = next(started)
    env = pytest.MonkeyPatch()
    try:  # REQUESTS_CA_BUNDLE overrides `verify=<path>` inside requests: point it at the lab's CA
        env.setenv("REQUESTS_CA_BUNDLE", lab["ontap"]["ca_file"])
        env.delenv("CURL_CA_BUNDLE", raising=False)
        _rest_provision(lab)
        out = ssh(lab, f"mkdir -p /mnt/fg_llm && mount -t nfs4 -o {MOUNT_OPTS} {lab['nfs_server']}:/fg_llm "
                       "/mnt/fg_llm")
        assert out.returncode == 0, out.stderr
        yield lab
    finally:
        env.undo()
        started.close()


def ssh(lab, command: str) -> subprocess.CompletedProcess:
    host = lab["hosts"][0]
    return subprocess.run(["ssh", "-i", lab["ssh_key"], "-o", f"UserKnownHostsFile={lab['known_hosts']}",
                           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(host["port"]),
                           f"root@{host['address']}", command], capture_output=True, text=True, timeout=120)


@pytest.fixture
def sdk(lab):
    o = lab["ontap"]
    conn = HostConnection(o["host"], port=o["port"], username=o["username"],
                          password=Path(o["password_file"]).read_text().strip(), verify=o["ca_file"])
    with conn:
        yield conn


def until(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.2)


@pytest.mark.root
@pytest.mark.slow
def test_a_hosts_writes_and_reads_show_on_the_flexgroup_its_constituent_node_and_lif(lab, sdk):
    n = 8
    fg = Volume.find(name="fg_llm")

    def fg_stats() -> dict:
        fg.get(fields="statistics")
        return fg.statistics.to_dict()

    def parts() -> dict[str, int]:
        return {c.name: c.statistics.throughput_raw.write
                for c in Volume.get_collection(is_constituent=True, fields="statistics,aggregates,name")}

    def lif_bytes(kind: str) -> dict[str, int]:
        return {i.location.node.name: getattr(i.statistics.throughput_raw, kind)
                for i in IpInterface.get_collection(fields="statistics,location")}

    def aggr_nodes() -> dict[str, str]:
        return {a.name: a.node.name for a in Aggregate.get_collection(fields="statistics,node")}

    def busy() -> dict[str, int]:
        nodes = Node.get_collection(fields="statistics")
        return {x.name: x.statistics.processor_utilization_raw for x in nodes}

    before, parts0, lifs0, busy0 = fg_stats(), parts(), lif_bytes("write"), busy()
    out = ssh(lab, f"dd if=/dev/urandom of=/mnt/fg_llm/io_probe bs=1M count={n} conv=fsync status=none")
    assert out.returncode == 0, out.stderr
    after = until(lambda: (s := fg_stats())["throughput_raw"]["write"] - before["throughput_raw"]["write"]
                  >= n * MIB and s, 20, "write counted on fg_llm")
    grown = after["throughput_raw"]["write"] - before["throughput_raw"]["write"]
    assert n * MIB <= grown <= n * MIB * 1.01
    assert after["iops_raw"]["write"] - before["iops_raw"]["write"] >= n  # wsize 1 MiB: one WRITE per MiB
    assert after["latency_raw"]["write"] > before["latency_raw"]["write"]
    parts1 = parts()
    assert sum(parts1.values()) == after["throughput_raw"]["write"]
    owner = [c for c in parts1 if parts1[c] - parts0.get(c, 0) >= n * MIB]
    assert len(owner) == 1  # the file lives on one constituent
    constituent = Volume.find(name=owner[0], is_constituent=True, fields="aggregates")
    node = aggr_nodes()[constituent.aggregates[0].name]
    lifs1 = lif_bytes("write")
    assert lifs1[node] - lifs0[node] >= n * MIB  # pNFS: the data went through that node's LIF
    assert busy()[node] > busy0[node]

    def write_rate() -> int:
        fg.get(fields="metric")
        return fg.metric.throughput.write if fg.metric.status == "ok" else 0

    # `metric` is the last complete 15 s window: polled from now on, it shows the window(s) of the dd
    assert until(write_rate, 40, "write rate in fg_llm's metric") > 0

    read0 = fg_stats()["throughput_raw"]["read"]
    out = ssh(lab, "cat /mnt/fg_llm/io_probe > /dev/null")
    assert out.returncode == 0, out.stderr
    until(lambda: fg_stats()["throughput_raw"]["read"] - read0 >= n * MIB, 20, "read counted on fg_llm")

    history = list(VolumeMetrics.get_collection(fg.uuid, interval="1h", fields="*"))
    assert history and all(r.duration == "PT15S" and r.timestamp for r in history)
    assert any(r.throughput.write > 0 for r in history)
    assert sum(r.throughput.write * 15 for r in history) >= n * MIB * 0.99
    ssh(lab, "rm -f /mnt/fg_llm/io_probe")
