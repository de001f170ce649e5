"""`labctl run | attach | collect` without a lab: clear errors, exit codes, the workdir rule."""

from __future__ import annotations

import pytest

from labctl.cli import main
from labctl.config.experiment import Experiment
from labctl.errors import ConfigError
from labctl.experiment.follow import describe
from labctl.experiment.hosts import Target, known_hosts_from_args
from labctl.experiment.run import HostRun, output_dir


def test_invalid_experiment_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "e.yaml"
    bad.write_text("training:\n  epochs: -1\n")
    assert main(["-i", str(tmp_path), "run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "training.epochs" in err and "Traceback" not in err


def test_unknown_run_is_a_state_error(tmp_path, capsys):
    assert main(["attach", "nope", "--runs-dir", str(tmp_path)]) == 1
    assert main(["collect", str(tmp_path / "nope")]) == 1
    assert "no run bundle" in capsys.readouterr().err


def test_missing_inventory(tmp_path, capsys):
    exp = tmp_path / "e.yaml"
    exp.write_text("trainer: emulate\n")
    assert main(["-i", str(tmp_path / "missing"), "run", str(exp), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "inventory directory not found" in capsys.readouterr().err


def test_known_hosts_from_ansible_args():
    args = "-o UserKnownHostsFile=/lab/ssh/known_hosts -o StrictHostKeyChecking=yes"
    assert known_hosts_from_args(args) == "/lab/ssh/known_hosts"
    assert known_hosts_from_args("-oUserKnownHostsFile=/k -o IdentitiesOnly=yes") == "/k"
    assert known_hosts_from_args("-o IdentitiesOnly=yes") is None


def test_workdir_on_the_measured_mount_is_refused():
    target = Target(
        name="gpu1",
        address="127.0.0.1",
        vars={"labctl_mount_path": "/mnt/fg_llm", "labctl_host_workdir": "/mnt/fg_llm/tmp"},
    )
    with pytest.raises(ConfigError, match="measured mount"):
        HostRun(Experiment(), target, "r1").prepare()
    assert output_dir(Experiment(), target, "r1") == "/mnt/fg_llm/labctl/r1/gpu1"


def test_progress_description():
    st = {
        "state": "training",
        "gpu_pct": 97.0,
        "nfs_mbps": {"read": 1.0, "write": 250.5},
        "progress": {"epoch": 2, "epochs": 3, "step": 10, "total": 40, "loss": 1.234, "phase": "train"},
    }
    text, total, done = describe(st)
    assert "epoch 2/3" in text and "step 10/40" in text and "loss 1.23" in text and "GPU 97%" in text
    assert "w 250.5 MB/s" in text and (total, done) == (120.0, 50.0)


def test_host_facts_are_checked_before_anything_starts():
    from labctl.errors import HostError

    target = Target(name="gpu1", address="127.0.0.1")
    mounted = {"mounts": [{"device": "s:/fg_llm", "fstype": "nfs4", "options": "vers=4.1"}]}
    run = HostRun(Experiment.model_validate({"gpus_per_host": 4}), target, "r1")
    run.facts = {
        **mounted,
        "gpus": "GPU 0: H200 (UUID: x)\nGPU 1: H200 (UUID: y)",
        "llmstudio_tag": "v1.2.0",
        "dataset_exists": True,
    }
    with pytest.raises(HostError, match="lists 2 GPU"):
        run._check_facts()
    run = HostRun(Experiment(), target, "r1")
    run.facts = {**mounted, "gpus": None, "llmstudio_tag": None}
    with pytest.raises(HostError, match="no LLM Studio checkout"):
        run._check_facts()
    run.facts = {**mounted, "llmstudio_tag": "v1.2.0", "dataset_exists": False}
    with pytest.raises(HostError, match="data set /mnt/fg_llm/data/oasst/train_full.pq"):
        run._check_facts()
    local = Experiment.model_validate({"model": {"backbone": "/var/tmp/labctl/models/tiny-llama"}})
    run = HostRun(local, target, "r1")
    run.facts = {**mounted, "llmstudio_tag": "v1.2.0", "dataset_exists": True, "backbone_exists": False}
    with pytest.raises(HostError, match="model directory /var/tmp/labctl/models/tiny-llama does not exist"):
        run._check_facts()
    run.facts["backbone_exists"] = True
    run._check_facts()
    run = HostRun(Experiment(trainer="emulate"), target, "r1")
    run.facts = {"mounts": []}
    with pytest.raises(HostError, match="nothing is mounted at /mnt/fg_llm"):
        run._check_facts()
    run.facts = mounted
    run._check_facts()
