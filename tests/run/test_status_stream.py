"""How the controller follows a host: `agent.pyz watch` over one SSH channel (follow.StatusStream), against a
simulated host's real sshd; an agent without `watch` is polled; a cut stream is opened again."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from labctl.errors import HostError
from labctl.experiment.agent.ship import ARCHIVE, agent_archive
from labctl.experiment.follow import StatusStream
from labctl.experiment.hosts import Target
from labctl.experiment.remote import Remote

pytestmark = pytest.mark.root


@pytest.fixture
def on_host(sim_lab, tmp_path) -> Iterator[tuple[Remote, dict[str, Any], Callable[[str, int], None]]]:
    """A Remote to the first simulated host, a manifest-like host record with a fresh run dir holding the
    agent, and `say(state, step)`, which replaces status.json there as the agent does (whole, by rename)."""
    host = sim_lab["hosts"][0]
    remote = Remote(Target(name=host["name"], address=host["address"], port=int(host["port"]), user="root",
                           key_file=sim_lab["ssh_key"], known_hosts=sim_lab["known_hosts"]), timeout=10)
    rundir = f"/var/tmp/stream-{tmp_path.name}"
    remote.mkdir(rundir)
    remote.mkdir(f"{rundir}/agent")
    remote.put_bytes(agent_archive(), f"{rundir}/agent/{ARCHIVE}")
    alive = int(host["pid"])  # the host's sshd: a process that stays alive, as a running agent does

    def say(state: str, step: int) -> None:
        doc = json.dumps({"state": state, "agent_pid": alive, "progress": {"step": step}})
        remote.put_text(doc, f"{rundir}/status.tmp")
        remote.check(f"mv {rundir}/status.tmp {rundir}/status.json")

    try:
        yield remote, {"name": host["name"], "rundir": rundir}, say
    finally:
        remote.run(f"rm -rf {shlex.quote(rundir)}")
        remote.close()


def _next(stream: StatusStream, want: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = stream.latest()
        if st is not None and want(st):
            return st
        time.sleep(0.1)
    raise AssertionError("no such status in time")


def test_one_stream_says_each_change_until_the_run_is_final(on_host):
    remote, rec, say = on_host
    say("training", 1)
    stream = StatusStream(remote, rec)
    try:
        assert _next(stream, lambda s: True)["progress"] == {"step": 1}
        channel = stream.chan
        say("training", 2)
        assert _next(stream, lambda s: s["progress"]["step"] == 2)["state"] == "training"
        say("finished", 3)
        assert _next(stream, lambda s: s["state"] == "finished")["progress"] == {"step": 3}
        assert stream.chan is channel and not stream.polling  # one channel, one agent process, all along
        deadline = time.monotonic() + 10
        while not channel.exit_status_ready() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert channel.recv_exit_status() == 0  # the agent's watch ended with the run
    finally:
        stream.close()


def test_an_agent_without_watch_is_polled(on_host):
    """An older labctl's agent (a run attached to again after an upgrade) knows only `status`."""
    remote, rec, say = on_host
    old = ("import json, sys\n"
           "if sys.argv[1] != 'status':\n    sys.exit(2)\n"
           "print(open(sys.argv[2] + '/status.json').read())\n")
    remote.put_text(old, f"{rec['rundir']}/agent/{ARCHIVE}")
    say("training", 7)
    stream = StatusStream(remote, rec)
    try:
        assert _next(stream, lambda s: True)["progress"] == {"step": 7}
        assert stream.polling
        say("finished", 8)
        assert stream.latest()["state"] == "finished"
    finally:
        stream.close()


def test_a_cut_stream_is_an_error_then_opened_again(on_host):
    remote, rec, say = on_host
    say("training", 1)
    stream = StatusStream(remote, rec)
    try:
        _next(stream, lambda s: True)
        remote.run(f"pkill -f {shlex.quote(rec['rundir'] + '/agent/' + ARCHIVE + ' watch')}")
        deadline = time.monotonic() + 30
        with pytest.raises(HostError, match="status stream ended"):
            while time.monotonic() < deadline:
                stream.latest()
                time.sleep(0.1)
        say("training", 5)
        assert _next(stream, lambda s: s["progress"]["step"] == 5)["state"] == "training"
    finally:
        stream.close()
