"""Shim formats (nfsiostat, nvidia-smi, the NFS views) and the mount verification's diagnoses."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from pathlib import Path

import pytest

from labctl.paths import repo_data
from labctl.testlab import nfsviews
from labctl.testlab.shims import nfsiostat, nvidia_smi

# Real NFSv4.1 counters (prometheus/procfs fixture, kernel whitespace), cut to what nfsiostat reads.
SNAPSHOT = """device fs.example.com:/volume4/apps mounted on /mnt/x with fstype nfs4 statvers=1.1
\topts:\trw,vers=4.1,rsize=131072,wsize=131072
\tage:\t83520
\tRPC iostats version: 1.1  p/v: 100003/4 (nfs)
\txprt:\ttcp 940 0 2 0 1 938505 938504 0 12756069 0 32 254729 10823602
\tper-op statistics
\t        READ: 34096 34096 0 7103096 1792122744 2272 464840 467945 0
\t       WRITE: 322308 322308 0 39161277084 56725504 401718334 10139998 411864389 0

"""
LATER = (SNAPSHOT.replace("age:\t83520", "age:\t83525")
         .replace("938505 938504 0 12756069", "943675 943674 0 12797429")
         .replace("READ: 34096 34096 0 7103096 1792122744 2272 464840 467945 0",
                  "READ: 39096 39096 0 8143096 2448102744 2312 474340 478045 0")
         .replace("WRITE: 322308 322308 0 39161277084 56725504 401718334 10139998 411864389 0",
                  "WRITE: 322428 322428 0 39177033084 56746624 401718484 10140598 411865189 0"))


def test_nfsiostat_blocks_match_nfs_utils():
    first = nfsiostat.parse(SNAPSHOT)["/mnt/x"]
    text = nfsiostat.block("/mnt/x", first, None, 5.0)
    assert text.splitlines()[1] == "fs.example.com:/volume4/apps mounted on /mnt/x:"
    assert "          11.237           0.000" in text
    assert ("read:              ops/s            kB/s           kB/op         retrans    avg RTT (ms)    "
            "avg exe (ms)  avg queue (ms)          errors") in text
    assert ("                   0.408          21.038          51.533        0 (0.0%)          13.633"
            "          13.724           0.067        0 (0.0%)") in text
    second = nfsiostat.block("/mnt/x", nfsiostat.parse(LATER)["/mnt/x"], first, 5.0)
    assert "        1034.000           0.000" in second
    assert ("                1000.000      128324.219         128.324        0 (0.0%)           1.900"
            "           2.020           0.008        0 (0.0%)") in second


def _act(root: Path, busy: list[float]) -> None:
    (root / "gpu").mkdir(parents=True, exist_ok=True)
    (root / "gpu" / "activity.json").write_text(json.dumps(
        {"t": time.time(), "gpus": len(busy), "busy_seconds": busy, "mem_used_mib": [20480] * len(busy),
         "pid": os.getpid()}))


def test_nvidia_smi_formats(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABCTL_SIM_HOST_ROOT", str(tmp_path))
    (tmp_path / "gpu").mkdir()
    (tmp_path / "gpu" / "count").write_text("2\n")
    assert nvidia_smi.main(["-L"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("GPU 1: Tesla V100-SXM2-32GB (UUID: GPU-")
    assert nvidia_smi.main(["dmon", "-s", "pucvmet", "-o", "DT", "-d", "1", "-c", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("#Date        Time         gpu    pwr  gtemp  mtemp     sm    mem")
    assert lines[1].startswith("#YYYYMMDD    HH:MM:SS     Idx      W      C      C      %      %")
    assert len(lines) == 4 and len(lines[2].split()) == len(lines[0].split())
    # the data columns line up under the header's right edges (as in real captures)
    ends = [m.end() for m in re.finditer(r"\S+", lines[2])]
    assert ends[3] == lines[0].index(" pwr") + 4 and ends[-1] == len(lines[0])
    query = ["--query-gpu=index,utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
    assert nvidia_smi.main(query) == 0
    assert capsys.readouterr().out.splitlines() == ["0, 0, 0", "1, 0, 0"]


def test_nvidia_smi_utilisation_follows_activity(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCTL_SIM_HOST_ROOT", str(tmp_path))
    _act(tmp_path, [10.0, 0.0])
    sampler = nvidia_smi.Sampler(tmp_path, 2)
    sampler.sample()
    time.sleep(0.5)
    _act(tmp_path, [10.5, 0.0])  # GPU 0 busy the whole 0.5 s
    r = sampler.sample()
    # 0.5 busy seconds over the (≥ 0.5 s) interval between the two samples
    assert 40 <= r[0]["sm"] <= 100 and r[1]["sm"] == 0
    assert r[0]["fb"] == 20480 and r[0]["pwr"] > r[1]["pwr"] and r[0]["pclk"] > r[1]["pclk"]


def test_views_replace_the_fuse_entry(tmp_path):
    state = tmp_path / "nfs" / nfsviews.slug("/mnt/fg_llm")
    state.mkdir(parents=True)
    request = {"spec": "127.0.0.1:/fg_llm", "server": "127.0.0.1", "mountpoint": "/mnt/fg_llm",
               "granted": {"vers": "4.1", "rsize": 65536, "wsize": 65536, "nconnect": 16, "pnfs": True},
               "client": "127.0.0.11", "requested": {}, "mounted_at": time.time() - 5}
    (state / "request.json").write_text(json.dumps(request))
    mounts = "proc /proc proc rw 0 0\n127.0.0.1:/fg_llm /mnt/fg_llm fuse.labctlnfs rw,user_id=0 0 0\n"
    stats = ("device proc mounted on /proc with fstype proc\n"
             "device 127.0.0.1:/fg_llm mounted on /mnt/fg_llm with fstype fuse.labctlnfs\n")
    m, s = nfsviews.render(tmp_path, mounts, stats)
    assert m.splitlines()[1].startswith("127.0.0.1:/fg_llm /mnt/fg_llm nfs4 rw,relatime,vers=4.1,rsize=65536,"
                                         "wsize=65536,namlen=255,hard,proto=tcp,nconnect=16,")
    assert s.count("\txprt:\ttcp ") == 16 and "pnfs=LAYOUT_NFSV4_1_FILES" in s
    assert "\tage:\t5\n" in s and s.endswith("\n\n")
    assert len([x for x in s.splitlines() if x.startswith("\tevents:\t")][0].split()) == 28


def _verify_module():
    spec = importlib.util.spec_from_file_location("labctl_nfs_verify",
                                                  repo_data("playbooks", "library", "labctl_nfs_verify.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ASKED = "vers=4.1,proto=tcp,rsize=1048576,wsize=1048576,hard,nconnect=16"


@pytest.mark.parametrize(("opts", "pnfs", "xprts", "needle"), [
    ("vers=4.1,rsize=1048576,wsize=65536,hard,proto=tcp,nconnect=16", "LAYOUT_NFSV4_1_FILES", 16,
     "tcp-max-xfer-size"),
    ("vers=4.1,rsize=1048576,wsize=1048576,hard,proto=tcp", "LAYOUT_NFSV4_1_FILES", 1, "kernel before 5.3"),
    ("vers=4.1,rsize=1048576,wsize=1048576,hard,proto=tcp,nconnect=16", "not configured", 16, "-v4.1-pnfs"),
    ("vers=4.0,rsize=1048576,wsize=1048576,hard,proto=tcp,nconnect=16", None, 16, "-v4.1 enabled"),
    ("vers=4.1,rsize=1048576,wsize=1048576,hard,proto=tcp,nconnect=16", "LAYOUT_NFSV4_1_FILES", 4,
     "only 4 of 16 transports"),
])
def test_verification_names_the_likely_cause(opts, pnfs, xprts, needle):
    mod = _verify_module()
    mounts = f"127.0.0.1:/fg_llm /mnt/fg_llm nfs4 rw,{opts} 0 0\n"
    nfsv4 = f"\tnfsv4:\tbm0=0x1,sessions,pnfs={pnfs},lease_time=90\n" if pnfs else ""
    stats = ("device 127.0.0.1:/fg_llm mounted on /mnt/fg_llm with fstype nfs4 statvers=1.1\n"
             f"\topts:\trw,{opts}\n" + nfsv4 + "\txprt:\ttcp 1 1 1 0 0 0 0 0 0 0 0 0 0\n" * xprts + "\n")
    mount, found = mod.find_mount(mounts, "/mnt/fg_llm"), mod.find_stats(stats, "/mnt/fg_llm")
    asked = mod.parse_options(ASKED)
    effective, problems = mod.check(mount, found, asked, True, "llm-lab", "127.0.0.1:/fg_llm")
    assert any(needle in p for p in problems), problems
    assert effective["transports"] == xprts


def test_verification_accepts_what_was_asked():
    mod = _verify_module()
    opts = "vers=4.1,rsize=1048576,wsize=1048576,hard,proto=tcp,nconnect=16"
    stats = ("device 127.0.0.1:/fg_llm mounted on /mnt/fg_llm with fstype nfs4 statvers=1.1\n"
             f"\topts:\trw,{opts}\n\tnfsv4:\tbm0=0x1,sessions,pnfs=LAYOUT_NFSV4_1_FILES,lease_time=90\n"
             + "\txprt:\ttcp 1 1 1 0 0 0 0 0 0 0 0 0 0\n" * 16)
    effective, problems = mod.check(
        mod.find_mount(f"127.0.0.1:/fg_llm /mnt/fg_llm nfs4 rw,{opts} 0 0\n", "/mnt/fg_llm"),
        mod.find_stats(stats, "/mnt/fg_llm"), mod.parse_options(ASKED), True, "llm-lab", "127.0.0.1:/fg_llm")
    assert problems == [] and effective["wsize"] == 1048576 and effective["nconnect"] == 16


def test_fuse_requests_are_coalesced_into_wsize_rpcs():
    from labctl.testlab.nfsfuse import Counters

    c = Counters({"rsize": 1048576, "wsize": 1048576, "nconnect": 16, "pnfs": True})
    for i in range(24):  # 3 MiB in FUSE's 128 KiB requests
        c.io("write", 131072, 0.001, fh=5, offset=i * 131072)
    c.io("write", 1000, 0.001, fh=5, offset=3 << 20)
    assert c.data["ops"]["WRITE"]["ops"] == 3  # the 1000-byte tail waits for more, a seek, fsync or close
    c.settle(5)
    write = c.data["ops"]["WRITE"]
    assert write["ops"] == 4 and write["bytes_sent"] == (3 << 20) + 1000 + 4 * 132
    assert c.data["bytes"]["serverwritebytes"] == (3 << 20) + 1000 and c.data["events"]["pnfs_write"] == 4
    assert sum(x["sends"] for x in c.data["xprt"]) == 4 and c.data["xprt"][3]["sends"] == 1
    c.io("read", 4096, 0, fh=6, offset=0)
    c.io("read", 4096, 0, fh=6, offset=1 << 20)  # a seek sends the pending 4 KiB
    c.settle(6)
    assert c.data["ops"]["READ"]["ops"] == 2


def test_a_shim_exits_on_sigterm_and_ignores_a_second_one_while_exiting():
    import signal

    from labctl.testlab.shims import exit_on_term

    before = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, exit_on_term)
        with pytest.raises(SystemExit) as done:
            exit_on_term(signal.SIGTERM, None)
        assert done.value.code == 0
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # a second TERM cannot raise during exit
    finally:
        signal.signal(signal.SIGTERM, before)
