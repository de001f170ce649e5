"""Hostile input validated with real types, before anything is touched: export clients as addresses, networks
and names (never everyone unless asked); sizes with upper bounds; YAML with an alias budget; unknown keys
named. Plus the places labctl writes for itself: the state dir it is given, the fallback error log, and the
environment it hands Ansible."""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from labctl.config.experiment import load_experiment
from labctl.config.lab import load_lab_config
from labctl.config.yaml_budget import load_yaml
from labctl.errors import ConfigError
from tests.hardening.util import clean_output

EVERYONE = [
    ["0.0.0.0/1", "128.0.0.0/1"],
    ["0.0.0.0/00"],
    ["0.0.0.0/0.0.0.0"],
    [" 0.0.0.0/0"],
    ["::/1", "8000::/1"],
    ["::ffff:0:0/96"],
    ["10.0.0.11", "0.0.0.0"],
]
NOT_CLIENTS = [["*"], ["127.0.0.11; rm -rf /"], ["0/0"], ["10.0.0.11\n0.0.0.0/0"], ["$(reboot)"]]


@pytest.mark.parametrize("clients", EVERYONE + NOT_CLIENTS, ids=repr)
def test_export_clients_covering_everyone_or_not_clients_are_refused(lab, clients):
    lab.configure(labctl_export_clients=clients)
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 2, out + err
    assert "all.yml: labctl_export_clients" in err, err
    clean_output(out, err)
    assert lab.mutations() == []  # refused before any change on the cluster


def test_export_clients_are_sent_in_canonical_form(lab):
    lab.configure(labctl_export_clients=["10.0.0.0/255.255.255.0", "10.0.1.7", "gpu9.example.com"])
    assert lab.run("provision", "--only", "storage")[0] == 0
    (policy,) = [p for p in lab.sim.state()["export_policies"].values() if p["name"] == "labctl_fg_llm"]
    assert [sorted(c["match"] for c in r["clients"]) for r in policy["rules"]] == [
        ["10.0.0.0/24", "10.0.1.7", "gpu9.example.com"]
    ]


# --- YAML alias bombs ---------------------------------------------------------------------------------------
def _alias_bomb(levels: int, key: str = "x") -> str:
    """`levels` anchors, each a list of nine aliases of the one before: 9**levels strings when expanded."""
    lines = [f'{key}0: &{key}0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels):
        lines.append(f"{key}{n}: &{key}{n} [" + ",".join([f"*{key}{n - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_experiment_fails_fast_with_a_short_message(tmp_path):
    bomb = tmp_path / "experiment.yaml"
    bomb.write_text(_alias_bomb(10) + "name: bomb\n", encoding="utf-8")
    assert len(bomb.read_bytes()) < 500
    proc = subprocess.run(  # a memory cap, so that an expansion fails the test instead of the machine
        [sys.executable, "-m", "labctl", "-i", str(tmp_path / "none"), "run", str(bomb), "--runs-dir",
         str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "TMPDIR": str(tmp_path)},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)),
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{bomb}: not valid YAML: aliases would add more than" in proc.stderr
    assert len(proc.stdout + proc.stderr) < 600 and proc.stderr.count("lol") == 0, proc.stderr[:2000]
    assert not (tmp_path / "runs").exists()
    for log in tmp_path.glob("*.log"):  # the error log holds the message, never an expansion
        assert log.stat().st_size < 10_000, log


def test_an_alias_referring_to_itself_is_refused(tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text("training: &t {epochs: 1, extra: *t}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="an alias refers to a value that contains it"):
        load_experiment(path)


def test_ordinary_anchors_and_merge_keys_still_load(tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text("common: &c {epochs: 2, batch_size: 4}\ntraining: {<<: *c, lora_r: 8}\n")
    data = load_yaml(path.read_text(encoding="utf-8"))
    assert data["training"] == {"epochs": 2, "batch_size": 4, "lora_r": 8}


@pytest.mark.parametrize("where", ["group_vars/all.yml", "host_vars/gpu1.yml", "hosts.yml"])
def test_an_alias_bomb_in_the_inventory_names_the_file(lab, where):
    path = lab.inventory / where
    path.parent.mkdir(exist_ok=True)
    prefix = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(prefix + _alias_bomb(6, key="labctl_bomb"), encoding="utf-8")
    with pytest.raises(ConfigError, match="aliases would add more than") as err:
        load_lab_config(lab.inventory)
    assert err.value.where == str(path)


# --- sizes and numbers in experiment.yaml -------------------------------------------------------------------
HUGE_MODEL = {"backbone": "huge", "layers": 10**6, "hidden": 10**9, "ffn": 10**9, "vocab": 10**9}


@pytest.mark.parametrize(
    ("emulate", "model", "key"),
    [
        ({"checkpoint_scale": 1e308}, {}, "emulate.checkpoint_scale"),
        ({"checkpoint_scale": 1000}, {}, "emulate.checkpoint_scale"),  # 13B × 1000 = 8.5 TB
        ({"checkpoint_bytes": 2 * 10**33}, {}, "emulate.checkpoint_bytes"),
        ({}, HUGE_MODEL, "model.layers"),
        ({"dataset_bytes": 10**30}, {}, "emulate.dataset_bytes"),
    ],
)
def test_sizes_beyond_sane_bounds_are_refused_before_any_host(tmp_path, capsys, emulate, model, key):
    from labctl.cli import main

    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump({"trainer": "emulate", "emulate": emulate, "model": model}))
    runs = tmp_path / "runs"
    rc = main(["-i", str(tmp_path / "no-inventory"), "run", str(path), "--runs-dir", str(runs)])
    out, err = capsys.readouterr()
    assert rc == 2, out + err
    assert str(path) in err and key in err, err
    clean_output(out, err)
    assert not runs.exists() or not any(runs.iterdir())  # no bundle: nothing was prepared


@pytest.mark.parametrize("section", [{"training": {"epochs": True}}, {"training": {"batch_size": False}},
                                     {"emulate": {"checkpoint_scale": True}}, {"gpus_per_host": True}])
def test_a_boolean_is_not_a_number(tmp_path, section):
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(section))
    with pytest.raises(ConfigError, match="must be a number") as err:
        load_experiment(path)
    (top,) = section
    assert top in err.value.message


def test_booleans_stay_booleans_and_numbers_numbers(tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump({"training": {"epochs": 2, "lora": False, "learning_rate": 1}}))
    exp = load_experiment(path)
    assert (exp.training.epochs, exp.training.lora, exp.training.learning_rate) == (2, False, 1.0)


# --- unknown keys -------------------------------------------------------------------------------------------
def test_unknown_labctl_keys_are_named_with_their_file(lab):
    lab.configure(labctl_workdir="/tmp", labctl_zebra_mode=True, my_own_var=1)
    rc, out, err = lab.run("provision", "--only", "storage", "--plan")
    assert rc == 0, out + err
    all_yml = lab.inventory / "group_vars" / "all.yml"
    assert f"{all_yml}: unknown key labctl_workdir is ignored (did you mean labctl_host_workdir?)" in err
    assert f"{all_yml}: unknown key labctl_zebra_mode is ignored\n" in err
    assert "my_own_var" not in err  # only labctl's own names are checked


# --- where labctl writes for itself -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [0o1777, 0o755, 0o2770 & ~0o020])
def test_an_existing_state_dir_keeps_its_mode(lab, tmp_path, monkeypatch, mode):
    shared = tmp_path / "shared-state"
    shared.mkdir()
    shared.chmod(mode)
    monkeypatch.setenv("LABCTL_STATE_DIR", str(shared))
    for command in (["status", "--only", "storage"], ["provision", "--only", "storage"]):
        rc, out, err = lab.run(*command)
        assert rc == 0, out + err
        assert stat.S_IMODE(shared.stat().st_mode) == mode
    assert stat.S_IMODE((shared / "ledger.json").stat().st_mode) & 0o077 == 0  # what labctl writes is its own


def test_a_state_dir_others_can_write_to_is_refused_and_left_alone(lab, tmp_path, monkeypatch):
    open_dir = tmp_path / "open-state"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    monkeypatch.setenv("LABCTL_STATE_DIR", str(open_dir))
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 1, out + err
    assert f"{open_dir}: other users can write to this directory (mode 0777)" in err
    clean_output(out, err)
    assert stat.S_IMODE(open_dir.stat().st_mode) == 0o777 and not any(open_dir.iterdir())
    assert lab.mutations() == []


def _fail_before_the_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A command that fails before any state dir is known: its error goes to the fallback log."""
    from labctl.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {epochs: -1}\n", encoding="utf-8")
    rc = main(["-i", str(tmp_path / "none"), "run", str(bad), "--runs-dir", str(tmp_path / "runs")])
    out, err = capsys.readouterr()
    assert rc == 2, out + err
    clean_output(out, err)
    return err


def test_the_fallback_error_log_never_follows_a_planted_link(tmp_path, monkeypatch, capsys):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    victim = tmp_path / "victim.conf"
    victim.write_text("precious\n", encoding="utf-8")
    (tmp / "labctl-errors.log").symlink_to(victim)
    _fail_before_the_state_dir(tmp_path, capsys)
    assert victim.read_text(encoding="utf-8") == "precious\n"
    (tmp / "labctl-errors.log").unlink()
    os.link(victim, tmp / "labctl-errors.log")  # a second name for someone else's file
    _fail_before_the_state_dir(tmp_path, capsys)
    assert victim.read_text(encoding="utf-8") == "precious\n"
    (tmp / "labctl-errors.log").unlink()
    _fail_before_the_state_dir(tmp_path, capsys)  # with nothing planted, the log is written, owner-only
    log = tmp / "labctl-errors.log"
    assert "epochs" in log.read_text(encoding="utf-8") and stat.S_IMODE(log.stat().st_mode) == 0o600


@pytest.mark.root
@pytest.mark.slow
def test_a_password_from_the_environment_is_not_handed_to_ansible(tmp_path):
    from tests.hosts.simlab import start_lab

    for lab in start_lab(tmp_path / "lab", hosts=1):
        password = Path(lab["ontap"]["password_file"]).read_text(encoding="utf-8").strip()
        all_yml = Path(lab["inventory"]) / "group_vars" / "all.yml"
        settings = yaml.safe_load(all_yml.read_text(encoding="utf-8"))
        settings.pop("labctl_ontap_password_file")
        all_yml.write_text(yaml.safe_dump({**settings, "labctl_ontap_password_env": "RELPW"}))
        state = tmp_path / "state"
        proc = subprocess.run(
            [sys.executable, "-m", "labctl", "-i", lab["inventory"], "status"],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "RELPW": password, "LABCTL_STATE_DIR": str(state), "PW_COPY": f"x{password}x"},
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        commands = list(state.glob("runs/*/artifacts/*/command"))
        assert commands, sorted(state.rglob("*"))
        for command in commands:
            env = json.loads(command.read_text(encoding="utf-8"))["env"]
            assert "RELPW" not in env and "PW_COPY" not in env and env.get("PATH")
        leaked = [p for p in state.rglob("*") if p.is_file() and password.encode() in p.read_bytes()]
        assert not leaked
