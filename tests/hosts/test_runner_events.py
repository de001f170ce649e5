"""ansible-runner events → per-host results and the phase summary (no Ansible needed)."""

from __future__ import annotations

import pytest

from labctl.hosts.runner import PlaybookRun, _Tracker
from labctl.lab import hosts_phase

WSIZE_MSG = "/mnt/fg_llm: wsize=65536 granted, 1048576 asked"


def _events(tracker, *events):
    for kind, host, extra in events:
        tracker({"event": kind, "event_data": {"host": host, **extra}})


def _run(phase, *events):
    run = PlaybookRun(phase=phase, playbook=f"{phase}.yml", private_data_dir=f"/state/runs/x-{phase}")
    tracker = _Tracker(run, ["gpu1", "gpu2"], phase)
    _events(tracker, *events)
    return run


def test_events_become_per_host_results_and_a_failing_host_hides_nothing():
    effective = {"vers": "4.1", "rsize": 1048576, "wsize": 65536, "nconnect": 16, "transports": 16,
                 "pnfs": "LAYOUT_NFSV4_1_FILES"}
    pre = _run("prechecks",
               ("runner_on_ok", "gpu1", {"task": "Run the prechecks", "task_action": "labctl_prechecks",
                                         "res": {"changed": False, "checks": {"gpus": {"ok": True}}}}),
               ("runner_on_ok", "gpu2", {"task": "Run the prechecks", "task_action": "labctl_prechecks",
                                         "res": {"changed": False, "checks": {}}}),
               ("playbook_on_stats", None, {}))
    mount = _run("mount",
                 ("runner_on_start", "gpu1", {"task": "Mount the FlexGroup"}),
                 ("runner_on_ok", "gpu1", {"task": "Mount the FlexGroup", "res": {"changed": True}}),
                 ("runner_on_failed", "gpu1", {"task": "Verify the effective mount",
                                               "task_action": "labctl_nfs_verify",
                                               "res": {"msg": WSIZE_MSG, "effective": effective,
                                                       "problems": ["wsize"]}}),
                 ("runner_on_unreachable", "gpu2", {"task": "Gathering Facts",
                                                    "res": {"msg": "ssh: connect to host 127.0.0.12 port 22: "
                                                                   "Connection refused"}}),
                 ("playbook_on_stats", None, {}))
    assert mount.hosts["gpu1"].status == "failed" and mount.hosts["gpu1"].changed == 1
    assert mount.hosts["gpu1"].data["mount"]["effective"]["wsize"] == 65536
    assert mount.hosts["gpu2"].status == "unreachable"
    llm = PlaybookRun(phase="llmstudio", playbook="llmstudio.yml", private_data_dir="/state/runs/x-llm")
    hostvars = {"gpu1": {"ansible_host": "127.0.0.11", "ansible_port": 2201},
                "gpu2": {"ansible_host": "127.0.0.12"}}
    steps = ("prechecks", "mount", "llmstudio")
    summary = hosts_phase._summarize("provision", hostvars, [pre, mount, llm], steps)
    assert summary["failed"] == ["gpu1", "gpu2"]
    g1, g2 = summary["hosts"]["gpu1"], summary["hosts"]["gpu2"]
    assert g1["steps"] == {"prechecks": "ok", "mount": "failed", "llmstudio": "not run"}
    assert g1["address"] == "127.0.0.11:2201" and "wsize=65536 granted" in g1["error"]
    assert g1["mount"]["wsize"] == 65536 and g1["prechecks"] == {"gpus": {"ok": True}}
    assert g2["status"] == "unreachable" and "Connection refused" in g2["error"]
    with pytest.raises(hosts_phase.HostsPhaseError) as err:
        hosts_phase._raise_if_failed(summary)
    assert "2 of 2 GPU host(s) failed in provision" in str(err.value)
    assert "gpu1 (127.0.0.11:2201): Verify the effective mount: /mnt/fg_llm: wsize=65536" in str(err.value)
    assert err.value.summary is summary


def test_every_host_runs_at_once(tmp_path, monkeypatch):
    """Ansible's default of 5 forks would run 8 hosts in two waves; labctl asks for one fork per host."""
    import ansible_runner

    from labctl.hosts.runner import run_playbook

    seen = {}

    def fake_run(**kwargs):
        seen.update(kwargs)
        return type("Result", (), {"rc": 0, "status": "successful"})()

    monkeypatch.setattr(ansible_runner, "run", fake_run)
    names = [f"gpu{i}" for i in range(1, 9)]
    run_playbook("prechecks.yml", tmp_path / "inventory", tmp_path / "state", hosts=names, live=False)
    assert seen["forks"] == 8
    run_playbook("prechecks.yml", tmp_path / "inventory", tmp_path / "state", hosts=names[:1], live=False)
    assert seen["forks"] == 1


def test_a_cancelled_playbook_is_an_interrupt_not_host_failures(tmp_path, monkeypatch):
    import ansible_runner

    from labctl.hosts.runner import run_playbook

    monkeypatch.setattr(ansible_runner, "run",
                        lambda **kw: type("Result", (), {"rc": 254, "status": "canceled"})())
    with pytest.raises(KeyboardInterrupt):
        run_playbook("mount.yml", tmp_path / "inventory", tmp_path / "state", hosts=["gpu1"], live=False)
    (kept,) = (tmp_path / "state" / "runs").iterdir()
    assert (kept / "labctl-result.json").exists()


def test_sudo_requiring_a_tty_names_the_pipelining_switch():
    run = _run("prechecks",
               ("runner_on_failed", "gpu1", {"task": "Run the prechecks", "res": {
                   "msg": "MODULE FAILURE", "module_stderr": "", "stderr": "",
                   "module_stdout": ""}}),
               ("runner_on_failed", "gpu2", {"task": "Run the prechecks", "res": {
                   "msg": "MODULE FAILURE",
                   "module_stderr": "sudo: sorry, you must have a tty to run sudo"}}))
    assert "ansible_pipelining: false" not in run.hosts["gpu1"].message
    assert "ansible_pipelining: false" in run.hosts["gpu2"].message
    assert run.hosts["gpu2"].message.startswith("Run the prechecks: MODULE FAILURE")


def test_the_plays_of_one_run_are_the_steps_and_a_failed_host_skips_the_later_plays():
    """provision.yml's plays (prechecks, mount, llmstudio) in one run: each play's results are a step."""
    ok = {"res": {"changed": False}}
    run = _run("provision-hosts",
               ("playbook_on_play_start", None, {"play": "Check every GPU host before provisioning"}),
               ("runner_on_ok", "gpu1", {"task": "Run the prechecks", **ok}),
               ("runner_on_ok", "gpu2", {"task": "Run the prechecks", **ok}),
               ("playbook_on_play_start", None, {"play": "Mount the FlexGroup"}),
               ("runner_on_ok", "gpu1", {"task": "Mount the FlexGroup", "res": {"changed": True}}),
               ("runner_on_failed", "gpu2", {"task": "Mount the FlexGroup", "res": {"msg": "refused"}}),
               ("playbook_on_play_start", None, {"play": "Install H2O LLM Studio"}),
               ("runner_on_skipped", "gpu1", {"task": "Make the backbone"}),
               ("playbook_on_stats", None, {}))
    steps = ("prechecks", "mount", "llmstudio", "never started")
    runs = [run.play_run(i, f"provision-{step}") for i, step in enumerate(steps)]
    assert [r.private_data_dir for r in runs] == [run.private_data_dir] * 4
    hostvars = {"gpu1": {"ansible_host": "127.0.0.11"}, "gpu2": {"ansible_host": "127.0.0.12"}}
    summary = hosts_phase._summarize("provision", hostvars, runs, steps)
    assert summary["hosts"]["gpu1"]["steps"] == {"prechecks": "ok", "mount": "changed", "llmstudio": "ok",
                                                 "never started": "not run"}
    assert summary["hosts"]["gpu1"]["changed"] == 1 and summary["hosts"]["gpu1"]["status"] == "changed"
    assert summary["hosts"]["gpu2"]["steps"] == {"prechecks": "ok", "mount": "failed", "llmstudio": "not run",
                                                 "never started": "not run"}
    assert summary["failed"] == ["gpu2"]
    assert "Mount the FlexGroup: refused" in summary["hosts"]["gpu2"]["error"]
    assert summary["runs"] == [run.private_data_dir]  # one run directory, named once
    # the whole run's view is kept too (labctl-result.json): gpu2 failed, gpu1 changed
    assert (run.hosts["gpu1"].status, run.hosts["gpu2"].status) == ("changed", "failed")
