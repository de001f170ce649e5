"""The hosts side on the simulated lab (root; 2 real sshd hosts): Ctrl-C during the hosts phase leaves a
consistent state and says how to resume, the rerun converges; the ONTAP password is in no runner artifact,
log or output; SSH cut on one host mid-playbook: the other completes, the failed one is reported and its
artifacts kept."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.hardening.util import clean_output, ledger_of, wait_for
from tests.hosts.simlab import start_lab

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def simlab(tmp_path_factory) -> Any:
    yield from start_lab(tmp_path_factory.mktemp("hardlab"), hosts=2, mounts=True)


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    """One state dir (ledger) for the module's lab, as a user would have."""
    return tmp_path_factory.mktemp("hardstate") / "state"


@pytest.fixture(scope="module")
def verbose_provisions() -> list[subprocess.CompletedProcess[str]]:
    """The successful `labctl -vv provision` runs of this module's tests: the password test checks the one an
    earlier test made instead of provisioning again (a no-op provision is still a playbook run); alone it runs
    its own."""
    return []


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _env(state: Path) -> dict[str, str]:
    return {**os.environ, "LABCTL_STATE_DIR": str(state), "COLUMNS": "200"}


def labctl(lab: dict[str, Any], state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl", "-i", lab["inventory"], *args], env=_env(state),
                          capture_output=True, text=True, timeout=600)


def _phase_dirs(state: Path, phase: str) -> list[Path]:
    runs = state / "runs"
    return sorted(runs.glob(f"*-{phase}")) if runs.exists() else []


def test_ctrl_c_in_the_hosts_phase_says_how_to_resume_and_the_rerun_converges(simlab, state,
                                                                             verbose_provisions):
    proc = subprocess.Popen([sys.executable, "-m", "labctl", "-i", simlab["inventory"], "provision"],
                            env=_env(state), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        wait_for(lambda: _phase_dirs(state, "provision-hosts") or proc.poll() is not None)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # ansible-runner takes the SIGINT itself and cancels the playbook: labctl reports an interrupt (130),
    # not host failures, and says how to resume
    assert proc.returncode == 130, out + err
    assert "rerun the same command" in err or "run the command again" in err, err
    clean_output(out, err)
    ledger = ledger_of(state)  # the storage part is recorded, complete
    assert {e["state"] for e in ledger["objects"].values()} == {"done"}
    rerun = labctl(simlab, state, "-vv", "provision")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    verbose_provisions.append(rerun)
    for host in simlab["hosts"]:
        mounts = (Path(host["root"]) / "proc" / "mounts").read_text()
        assert " /mnt/fg_llm nfs4 " in mounts, host["name"]


def test_the_password_is_in_no_runner_artifact_log_or_output(simlab, state, verbose_provisions):
    password = Path(simlab["ontap"]["password_file"]).read_text().strip()
    assert len(password) >= 8
    provision = verbose_provisions[-1] if verbose_provisions else labctl(simlab, state, "-vv", "provision")
    outputs = [provision, labctl(simlab, state, "status", "--output", "json")]
    for out in outputs:
        assert out.returncode == 0, out.stderr[-2000:]
        assert password not in out.stdout + out.stderr
    artifacts = [p for p in state.rglob("*") if p.is_file()]
    assert any("artifacts" in p.parts for p in artifacts)  # ansible-runner's events and stdout are there
    assert [p for p in artifacts if password.encode() in p.read_bytes()] == []
    # owner-only: the state dir, and each directory labctl made in it (runner artifacts included)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for path in [state / "runs", *(state / "runs").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for name in ("ledger.json", "labctl.log"):
        assert stat.S_IMODE((state / name).stat().st_mode) & 0o077 == 0, name


def test_ssh_host_keys_are_verified_and_never_added(simlab, tmp_path):
    import paramiko

    from labctl.errors import HostError
    from labctl.experiment.hosts import Target
    from labctl.experiment.remote import Remote

    host = simlab["hosts"][0]
    empty, wrong = tmp_path / "empty", tmp_path / "wrong"
    empty.write_text("")
    other = paramiko.Ed25519Key.from_private_key_file(simlab["ssh_key"])  # a key, but not this host's
    wrong.write_text(f"[{host['address']}]:{host['port']} {other.get_name()} {other.get_base64()}\n")

    def target(known: str) -> Target:
        return Target(name=host["name"], address=host["address"], port=int(host["port"]), user="root",
                      key_file=simlab["ssh_key"], known_hosts=known)

    for known in (empty, wrong):
        remote = Remote(target(str(known)), timeout=10)
        with pytest.raises(HostError) as err:
            remote.run("true")
        assert str(known) in str(err.value), err.value
        assert known.read_text() == ("" if known == empty else known.read_text())  # nothing was added
    remote = Remote(target(simlab["known_hosts"]), timeout=10)
    try:
        assert remote.run("true")[0] == 0
    finally:
        remote.close()



def test_remote_commands_leave_no_channel_file_to_the_garbage_collector(simlab):
    """paramiko#2685: a ChannelStdinFile left to the GC can be finalised on the transport thread while it
    holds the channel lock, deadlocking the connection ("Timeout opening channel", then a hang in close()).
    Remote.run makes no stdin file and closes every channel file it opens, in the calling thread."""
    import gc

    import paramiko

    from labctl.experiment.hosts import Target
    from labctl.experiment.remote import Remote

    host = simlab["hosts"][0]
    remote = Remote(Target(name=host["name"], address=host["address"], port=int(host["port"]), user="root",
                           key_file=simlab["ssh_key"], known_hosts=simlab["known_hosts"]), timeout=10)
    gc.collect()
    gc.disable()  # what is left unclosed stays visible instead of being finalised at a random moment
    try:
        outputs = [remote.run(f"echo {k}")[1] for k in range(5)]
        open_files = [o for o in gc.get_objects()
                      if isinstance(o, paramiko.channel.ChannelFile) and not o.closed]
    finally:
        gc.enable()
        remote.close()
    assert outputs == [f"{k}\n" for k in range(5)]
    assert open_files == []

def test_ssh_cut_on_one_host_mid_playbook_the_other_completes(simlab, state):
    """Runs last in this module: it stops gpu2's sshd for good."""
    assert labctl(simlab, state, "teardown", "--yes", "--only", "hosts").returncode == 0
    victim = simlab["hosts"][1]
    proc = subprocess.Popen([sys.executable, "-m", "labctl", "-i", simlab["inventory"], "provision",
                             "--only", "hosts"], env=_env(state), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    before = set(_phase_dirs(state, "provision-hosts"))
    earlier = set(state.glob("runs/*"))
    try:
        wait_for(lambda: set(_phase_dirs(state, "provision-hosts")) - before or proc.poll() is not None)
        for pid in [int(victim["pid"]), *_descendants(int(victim["pid"]))]:  # sshd and every session
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out + err
    clean_output(out, err)
    assert victim["name"] in err
    survivor = simlab["hosts"][0]
    assert " /mnt/fg_llm nfs4 " in (Path(survivor["root"]) / "proc" / "mounts").read_text()
    results = [json.loads((p / "labctl-result.json").read_text()) for p in set(state.glob("runs/*")) - earlier
               if (p / "labctl-result.json").exists()]
    assert results, "the runner's artifacts are kept"
    statuses = [{name: h["status"] for name, h in r["hosts"].items()} for r in results]
    assert any(st.get(victim["name"]) in ("failed", "unreachable") for st in statuses), statuses
    assert all(st.get(survivor["name"], "ok") in ("ok", "changed") for st in statuses), statuses
