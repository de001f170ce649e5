"""The calls into the hosts phase (labctl.lab.hosts_phase): order, arguments, and what happens on failure."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from labctl.errors import HostError


@pytest.fixture
def fake_hosts(lab, monkeypatch):
    """A stand-in hosts phase that records each call (with the simulator's request count at that moment)."""
    calls: list[tuple[str, dict, int]] = []
    status = {"gpu1": {"address": "127.0.0.11", "reachable": True, "mounted": True, "problems": []}}

    def record(name):
        def fn(**kwargs):
            calls.append((name, kwargs, len(lab.sim.requests())))
            if name == "teardown_hosts" and fake.fail:
                raise HostError("gpu2: umount: target is busy")
            return status if name == "host_status" else {"phase": name}

        return fn

    fake = SimpleNamespace(
        provision_hosts=record("provision_hosts"),
        teardown_hosts=record("teardown_hosts"),
        host_status=record("host_status"),
        fail=False,
        calls=calls,
    )
    for name in ("provision_hosts", "teardown_hosts", "host_status"):
        monkeypatch.setattr(f"labctl.lab.hosts_phase.{name}", getattr(fake, name))
    return fake


def test_provision_runs_storage_then_hosts_with_the_nfs_server(lab, fake_hosts):
    rc, out, err = lab.run("provision")
    assert rc == 0, err
    ((name, kwargs, at),) = fake_hosts.calls
    assert name == "provision_hosts"
    assert at == len(lab.sim.requests())  # storage was complete before the hosts phase began
    assert kwargs["inventory"] == lab.inventory and kwargs["state_dir"] == lab.root / "state"
    assert kwargs["extra_vars"] == {"labctl_nfs_server": "127.0.0.1"} and kwargs["plan"] is False
    assert "verified: fg_llm" in out


def test_plan_passes_the_flag_and_hosts_only_uses_the_recorded_server(lab, fake_hosts):
    assert lab.run("provision", "--plan")[0] == 0
    assert fake_hosts.calls[-1][1]["plan"] is True
    assert lab.run("provision", "--only", "storage")[0] == 0
    mark = lab.mark()
    assert lab.run("provision", "--only", "hosts")[0] == 0
    assert fake_hosts.calls[-1][1]["extra_vars"] == {"labctl_nfs_server": "127.0.0.1"}
    assert lab.sim.requests()[mark:] == []  # the server came from the ledger, not from ONTAP


def test_teardown_runs_hosts_first_and_stops_if_they_fail(lab, fake_hosts):
    assert lab.run("provision")[0] == 0
    fake_hosts.fail = True
    mark = lab.mark()
    rc, _, err = lab.run("teardown", "--yes")
    assert rc == 1 and "gpu2: umount: target is busy" in err
    assert lab.mutations(mark) == []  # the storage is left alone while a host may still use it
    fake_hosts.fail = False
    rc, out, err = lab.run("teardown", "--yes")
    assert rc == 0, err
    name, kwargs, at = fake_hosts.calls[-1]
    assert name == "teardown_hosts" and kwargs["extra_vars"] == {"labctl_nfs_server": "127.0.0.1"}
    assert not [r for r in lab.sim.requests()[:at] if r["method"] == "DELETE"]


def test_status_includes_the_hosts(lab, fake_hosts):
    assert lab.run("provision")[0] == 0
    rc, out, _ = lab.run("status")
    assert rc == 0 and "GPU hosts" in out and "gpu1" in out
    assert fake_hosts.calls[-1][0] == "host_status"


def test_teardown_passes_force_and_remove_install_to_the_hosts(lab, fake_hosts):
    assert lab.run("provision")[0] == 0
    assert lab.run("teardown", "--yes", "--only", "hosts")[0] == 0
    assert fake_hosts.calls[-1][1]["force"] is False and fake_hosts.calls[-1][1]["remove_install"] is False
    assert lab.run("teardown", "--yes", "--only", "hosts", "--force", "--remove-install")[0] == 0
    name, kwargs, _ = fake_hosts.calls[-1]
    assert name == "teardown_hosts" and kwargs["force"] is True and kwargs["remove_install"] is True
