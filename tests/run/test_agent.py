"""The host agent, run locally: monitors around a detached trainer, raw formats, failures, stop."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labctl.experiment.agent import privilege, progress
from labctl.experiment.agent.ship import ARCHIVE, write_agent
from labctl.fileops import pid_alive
from labctl.formats import records
from labctl.formats.dmon import rows as dmon_rows
from labctl.formats.mountstats import COLUMNS, parse_entries, pick, read_snapshots

DMON = """#!/bin/sh
[ "$1" = dmon ] || exit 1
echo "#Date       Time        gpu   pwr gtemp mtemp    sm   mem"
echo "#YYYYMMDD   HH:MM:SS    Idx     W     C     C     %     %"
while true; do
  d=$(date +%Y%m%d); t=$(date +%H:%M:%S)
  echo " $d   $t      0    37    19     -    80     0"; echo " $d   $t      1    37    19     -     0     0"
  sleep 1
done
"""
MOUNTSTATS = """device proc mounted on /proc with fstype proc
device srv:/fg_llm mounted on {mount} with fstype nfs4 statvers=1.1
\topts:\trw,vers=4.1,rsize=1048576,wsize=1048576,hard,proto=tcp,nconnect=2
\tage:\t10
\tbytes:\t0 0 0 0 {read} {write} 0 0
\tRPC iostats version: 1.1  p/v: 100003/4 (nfs)
\txprt:\ttcp 1 1 1 0 0 5 5 0 5 0 64 0 0
\txprt:\ttcp 2 1 1 0 0 7 7 0 7 0 64 0 0
\tper-op statistics
\t        READ: 1 1 0 100 1100 0 1 1 0
\t       WRITE: 1 1 0 1100 100 0 1 1 0

device x mounted on /other with fstype ext4
"""


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A fake host: bin/ with nvidia-smi and a failing nfsiostat, a mount dir and a mountstats view."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "nvidia-smi").write_text(DMON)
    (bin_ / "nfsiostat").write_text("#!/bin/sh\necho 'nfsiostat: no NFS mount' >&2\nexit 1\n")
    for f in bin_.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}:{os.environ['PATH']}")
    mount = tmp_path / "mnt" / "fg llm"  # a space: escaped \040 in mountstats
    mount.mkdir(parents=True)
    esc = str(mount).replace(" ", "\\040")
    (tmp_path / "mountstats").write_text(MOUNTSTATS.format(mount=esc, read=0, write=0))
    (tmp_path / "mounts").write_text(f"srv:/fg_llm {esc} nfs4 rw,vers=4.1,nconnect=2 0 0\n")
    return tmp_path, mount


def spec_for(tmp_path: Path, mount: Path, *, steps: int = 6, epochs: int = 2, compute: float = 0.15) -> Path:
    rundir = tmp_path / "run"
    (rundir / "agent").mkdir(parents=True)
    write_agent(rundir / "agent")
    out = mount / "out"
    emu = {
        "output_dir": str(out),
        "dataset_path": str(mount / "data" / "train_full.pq"),
        "epochs": epochs,
        "steps_per_epoch": steps,
        "step_compute_s": compute,
        "startup_s": 0.2,
        "validation_s": 0.2,
        "checkpoint_bytes": 2_000_000,
        "dataset_bytes": 1_000_000,
        "activity_path": str(tmp_path / "act.json"),
    }
    (rundir / "emulator.json").write_text(json.dumps(emu))
    spec = {
        "run_id": "r1",
        "host": "h1",
        "rundir": str(rundir),
        "mount": str(mount),
        "gpus": 1,
        "proc_mountstats": str(tmp_path / "mountstats"),
        "proc_mounts": str(tmp_path / "mounts"),
        "monitors": {
            "dmon": True,
            "dmon_interval_s": 1,
            "nfsiostat": True,
            "nfsiostat_interval_s": 1,
            "mountstats": True,
            "mountstats_interval_s": 0.5,
            "bpftrace": False,
            "lead_s": 1.5,
            "tail_s": 1.5,
        },
        "trainer": {
            "kind": "emulate",
            "argv": [sys.executable, str(rundir / "agent" / ARCHIVE), "emulate",
                     str(rundir / "emulator.json")],
            "cwd": str(rundir),
            "output_dir": str(out),
            "flags_path": str(out / "flags.json"),
        },
    }
    (rundir / "spec.json").write_text(json.dumps(spec))
    return rundir


def agent(rundir: Path, cmd: str, arg: str | None = None) -> dict | list:
    out = subprocess.run(
        [sys.executable, str(rundir / "agent" / ARCHIVE), cmd, arg or str(rundir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def wait_final(rundir: Path, timeout: float = 60) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        st = agent(rundir, "status")
        if st["state"] in ("finished", "failed", "stopped", "lost"):
            return st
        time.sleep(0.3)
    raise AssertionError(f"agent did not finish: {st}")


def test_monitors_bracket_training_and_a_failing_monitor_is_recorded(host):
    tmp_path, mount = host
    rundir = spec_for(tmp_path, mount)
    agent(rundir, "start", str(rundir / "spec.json"))
    seen_training = None
    deadline = time.monotonic() + 60
    while seen_training is None and time.monotonic() < deadline:
        st = agent(rundir, "status")
        if st["state"] == "training" and st["progress"].get("step"):
            seen_training = st
        time.sleep(0.1)
    assert seen_training and seen_training["gpu_pct"] in (80.0, None)
    st = wait_final(rundir)
    assert st["state"] == "finished" and st["trainer"]["finished_flag"] is True
    assert st["trainer"]["detach"] == "setsid" and st["trainer"]["exit_status"] == 0
    assert st["progress"]["epoch"] == 2 and st["progress"]["step"] == 6

    raw = rundir / "raw"
    names = sorted(p.name for p in raw.iterdir())
    assert names == ["dmon.f64", "dmon.log", "monitors.json", "mountstats.f64", "mountstats.log",
                     "nfsiostat.f64", "nfsiostat.log", "train.log"]
    columns, rows = records.read(raw / "mountstats.f64")
    snapshots = list(read_snapshots((raw / "mountstats.log").read_text().splitlines()))
    complete = [b for _, _, b in snapshots if pick(parse_entries(b), str(mount)).complete()]
    assert complete and columns == COLUMNS and len(rows) == len(snapshots) == len(complete)
    assert all(abs(r[0] - t) < 1e-5 for r, (t, _, _) in zip(rows, snapshots, strict=True))  # its snapshot's
    mon = {m["name"]: m for m in json.loads((raw / "monitors.json").read_text())["monitors"]}
    assert mon["nfsiostat"]["status"] == "failed" and mon["nfsiostat"]["exit_status"] == 1
    assert mon["nfsiostat"]["errors"] and "no NFS mount" in mon["nfsiostat"].get("stderr_tail", "")
    assert mon["bpftrace"]["status"] == "skipped"
    trainer = st["trainer"]
    for name in ("dmon", "mountstats"):
        assert mon[name]["status"] == "stopped"
        assert (
            mon[name]["started_at"] < trainer["started_at"] and mon[name]["stopped_at"] > trainer["ended_at"]
        )

    dmon = (raw / "dmon.log").read_text().splitlines()
    assert dmon[0].startswith("#Date") and dmon[2].split()[2] == "0"
    columns, compact = records.read(raw / "dmon.f64")  # written by the agent once dmon stopped
    whole = [r for r in dmon_rows(dmon) if r is not None and len(r[2]) == len(r[0])]
    assert columns[:2] == ("ts", "gpu") and "sm:%" in columns and len(compact) == len(whole) > 0
    ms = (raw / "mountstats.log").read_text()
    blocks = ms.split("#ts ")[1:]
    assert len(blocks) >= 6
    for block in blocks:
        head, _, body = block.partition("\n")
        wall, mono = map(float, head.split())
        assert abs(wall - time.time()) < 120 and mono > 0
        assert body.startswith("device srv:/fg_llm mounted on ") and body.count("\txprt:\t") == 2
        assert "/other" not in body
    train = (raw / "train.log").read_text()
    assert "Training Epoch: 2 / 2" in train and "Saving best model checkpoint" in train

    files = {f["path"]: f for f in agent(rundir, "files")}
    assert set(files) == set(names)
    digest = hashlib.sha256((raw / "train.log").read_bytes()).hexdigest()
    assert files["train.log"]["sha256"] == digest
    facts = agent(rundir, "facts", str(rundir / "spec.json"))
    assert facts["mounts"][0]["options"] == "rw,vers=4.1,nconnect=2" and facts["nconnect_xprts"] == 2
    assert facts["dataset_bytes"] is None and facts["mem_total_bytes"] > 1 << 20  # the spec names no data set
    spec = json.loads((rundir / "spec.json").read_text())
    (rundir / "spec2.json").write_text(json.dumps({**spec, "dataset": str(mount / "data" / "train_full.pq")}))
    facts = agent(rundir, "facts", str(rundir / "spec2.json"))
    assert facts["dataset_bytes"] == 1_000_000  # the data set the emulator wrote, as the host finds it


def test_stop_request_stops_training(host):
    tmp_path, mount = host
    rundir = spec_for(tmp_path, mount, steps=200, compute=0.2)
    agent(rundir, "start", str(rundir / "spec.json"))
    deadline = time.monotonic() + 60
    while agent(rundir, "status")["state"] != "training":
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.1)
    time.sleep(1.0)
    agent(rundir, "stop")
    st = wait_final(rundir, 60)
    assert st["state"] == "stopped"
    assert st["trainer"]["finished_flag"] is False
    assert not pid_alive(st["trainer"]["pid"])
    assert not (mount / "out" / "flags.json").exists()
    mon = json.loads((rundir / "raw" / "monitors.json").read_text())["monitors"]
    assert all(m["status"] in ("stopped", "skipped", "failed") for m in mon)


def test_status_of_a_dead_agent_is_lost(host, tmp_path):
    _, mount = host
    rundir = tmp_path / "dead"
    rundir.mkdir()
    (rundir / "status.json").write_text(
        json.dumps({"state": "training", "agent_pid": 2**22 + 12345, "trainer": {"pid": 2**22 + 12346}})
    )
    out = subprocess.run(
        [sys.executable, "-m", "labctl.experiment.agent", "status", str(rundir)],  # from the checkout
        capture_output=True,
        text=True,
        check=True,
    )
    st = json.loads(out.stdout)
    assert st["state"] == "lost" and st["trainer_alive"] is False


def test_log_parsers():
    text_lines = [
        "2024-01-01 12:00:00,123 - INFO: Training Epoch: 2 / 3",
        "2024-01-01 12:00:01,123 - INFO: train loss: 1.23:  14%|#3        | 6/43 [00:00<00:00, 97.47it/s]",
    ]
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "train.log"
        log.write_text("\n".join(text_lines) + "\n")
        p = progress.progress(log)
        assert p == {"epoch": 2, "epochs": 3, "step": 6, "total": 43, "loss": 1.23, "phase": "train"}
        dmon = Path(d) / "dmon.log"
        dmon.write_text(
            "#Date Time gpu sm\n#YYYYMMDD HH:MM:SS Idx %\n 20260101 10:00:00 0 10\n"
            " 20260101 10:00:01 0 90\n 20260101 10:00:01 1 30\n 20260101 10:00:02 0 ^C"
        )
        assert progress.last_gpu_pct(dmon) == 60.0
        assert progress.last_gpu_pct(dmon, gpus=1) == 90.0
        rows = "".join(f" 20260101 10:{i // 60:02d}:{i % 60:02d} 0 {i % 100}\n" for i in range(3000))
        dmon.write_text("#Date Time gpu sm\n#YYYYMMDD HH:MM:SS Idx %\n" + rows)  # header far above the tail
        assert progress.last_gpu_pct(dmon) == 99.0


def test_systemd_run_failure_falls_back_to_setsid(host):
    tmp_path, mount = host
    (tmp_path / "bin" / "systemd-run").write_text("#!/bin/sh\necho 'Failed to connect to bus' >&2\nexit 1\n")
    (tmp_path / "bin" / "systemd-run").chmod(0o755)
    rundir = spec_for(tmp_path, mount, steps=3, epochs=1)
    spec = json.loads((rundir / "spec.json").read_text())
    spec["use_systemd"] = "always"
    (rundir / "spec.json").write_text(json.dumps(spec))
    agent(rundir, "start", str(rundir / "spec.json"))
    st = wait_final(rundir)
    assert st["state"] == "finished"
    assert (
        st["trainer"]["detach"] == "setsid" and "Failed to connect to bus" in st["trainer"]["systemd_error"]
    )


def test_bpftrace_is_skipped_without_root(monkeypatch):
    monkeypatch.setattr(
        privilege.shutil, "which", lambda name: None if name == "sudo" else f"/usr/bin/{name}"
    )
    monkeypatch.setattr(privilege.os, "geteuid", lambda: 1000)
    prefix, reason = privilege.bpftrace_privilege()
    assert prefix == [] and "not root" in reason
    monkeypatch.setattr(privilege.shutil, "which", lambda name: None)
    assert privilege.bpftrace_privilege()[1] == "bpftrace is not installed"


def test_stop_after_the_agent_died_stops_what_it_left(host):
    tmp_path, mount = host
    rundir = spec_for(tmp_path, mount, steps=200, compute=0.2)
    agent(rundir, "start", str(rundir / "spec.json"))
    deadline = time.monotonic() + 60
    while (st := agent(rundir, "status"))["state"] != "training":
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.1)
    os.kill(st["agent_pid"], 9)  # the agent dies; trainer and monitors run on (own sessions)
    deadline = time.monotonic() + 10
    while (st := agent(rundir, "status"))["state"] != "lost" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert st["state"] == "lost" and st["trainer_alive"] is True
    monitors = json.loads((rundir / "raw" / "monitors.json").read_text())["monitors"]
    running = {m["name"]: m["pid"] for m in monitors if m["status"] == "running"}
    pids = [st["trainer"]["pid"], running["dmon"], running["mountstats"]]
    assert all(pid_alive(p) for p in pids)
    agent(rundir, "stop")
    deadline = time.time() + 15
    while time.time() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(pid_alive(p) for p in pids)


def test_progress_on_real_llmstudio_v1_2_0_lines(tmp_path):
    """The live view on LLM Studio v1.2.0's own log lines (research §8), through each phase."""
    real = Path(__file__).resolve().parents[1] / "report" / "fixtures" / "train_llmstudio_v1.2.0_real.log"
    lines = real.read_text(encoding="utf-8").splitlines()
    log = tmp_path / "train.log"
    log.write_text("\n".join(lines[:8]) + "\n", encoding="utf-8")
    assert progress.progress(log) == {
        "epoch": 1,
        "epochs": 2,
        "step": 90,
        "total": 90,
        "loss": 5.82,
        "phase": "train",
    }
    log.write_text("\n".join(lines[:10]) + "\n", encoding="utf-8")
    assert progress.progress(log)["phase"] == "validation"
    log.write_text("\n".join(lines[:12]) + "\n", encoding="utf-8")
    assert progress.progress(log)["phase"] == "checkpoint"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert progress.progress(log)["epoch"] == 2


def test_compact_records_are_written_after_the_monitors_and_a_failure_is_a_monitor_error(tmp_path):
    from labctl.experiment.agent.monitors import MONITORS, Monitor, write_compact_records
    from labctl.formats import bpftrace

    fixtures = Path(__file__).parents[1] / "report" / "fixtures"
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "dmon.log").write_bytes((fixtures / "dmon_a_new_dt_ctrlc.log").read_bytes())
    (raw / "bpftrace.jsonl").write_text(bpftrace.marker("tick", 10**9) + "\n")
    (raw / "bpftrace.f64" / "taken").mkdir(parents=True)  # a directory holds the record's place: it fails
    kinds = {k.name: k for k in MONITORS}
    dmon, trace = (Monitor(kinds[name], [name], tmp_path) for name in ("dmon", "bpftrace"))
    write_compact_records(raw, [dmon, trace])
    assert records.read(raw / "dmon.f64")[0][:4] == ("ts", "gpu", "pwr:W", "gtemp:C")
    assert not dmon.rec["errors"]
    assert trace.rec["errors"][0].startswith("compact record of bpftrace.jsonl not written")
    assert (raw / "bpftrace.f64").is_dir() and not (raw / "bpftrace.totals.json").exists()
    assert sorted(p.name for p in raw.iterdir() if p.name.endswith(".tmp")) == []


def test_watch_says_the_status_as_it_changes_and_ends_with_the_run(tmp_path):
    """`agent watch`: a line at once, a line per change (no repeats between heartbeats), then it ends after
    saying the final state."""
    rundir = tmp_path / "run"
    rundir.mkdir()
    status = rundir / "status.json"

    def say(state: str, step: int) -> None:
        tmp = rundir / "status.tmp"
        tmp.write_text(json.dumps({"state": state, "agent_pid": os.getpid(), "progress": {"step": step}}))
        tmp.replace(status)  # as the agent writes it: whole or not at all

    say("training", 1)
    proc = subprocess.Popen([sys.executable, "-m", "labctl.experiment.agent", "watch", str(rundir)],
                            stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        say("training", 2)
        second = json.loads(proc.stdout.readline())
        say("finished", 3)
        rest = [json.loads(line) for line in proc.stdout]  # until it exits
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (first["state"], first["progress"]["step"]) == ("training", 1)
    assert (second["state"], second["progress"]["step"]) == ("training", 2)
    assert [(s["state"], s["progress"]["step"]) for s in rest] == [("finished", 3)]


def test_watch_of_a_dead_agent_says_lost_and_ends(tmp_path):
    rundir = tmp_path / "dead"
    rundir.mkdir()
    (rundir / "status.json").write_text(json.dumps({"state": "training", "agent_pid": 2**22 + 12345}))
    out = subprocess.run([sys.executable, "-m", "labctl.experiment.agent", "watch", str(rundir)],
                         capture_output=True, text=True, check=True, timeout=30)
    assert [json.loads(line)["state"] for line in out.stdout.splitlines()] == ["lost"]
