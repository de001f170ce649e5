"""Secrets and trust: a recognisable ONTAP password never appears in any output, log, ledger or state file;
TLS is verified (the inventory's CA, not the environment's); export rules only for the inventory hosts;
state is owner-only."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.cli import main
from labctl.sim import OntapSimulator
from tests.hardening.util import clean_output
from tests.ontap.conftest import GPU_HOSTS, write_inventory

CANARY = "Zebra-Canary-7781!pw"


@pytest.fixture(scope="module")
def canary_sim() -> Iterator[OntapSimulator]:
    with OntapSimulator(password=CANARY) as sim:
        yield sim


def _needles() -> list[bytes]:
    basic = base64.b64encode(f"admin:{CANARY}".encode())
    return [CANARY.encode(), basic, CANARY.encode("utf-16-le"), CANARY[:12].encode()]


def _hits(root: Path, skip: set[Path]) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path not in skip:
            data = path.read_bytes()
            found += [f"{path}: {n!r}" for n in _needles() if n in data]
    return found


def test_the_password_is_nowhere_in_output_logs_ledger_or_state(canary_sim, tmp_path, monkeypatch, capsys):
    state = tmp_path / "state"
    monkeypatch.setenv("LABCTL_STATE_DIR", str(state))
    monkeypatch.setenv("COLUMNS", "250")
    canary_sim.reset()
    inventory = write_inventory(tmp_path, canary_sim)
    secret_file = tmp_path / "secrets" / "ontap_password"
    outputs: list[str] = []

    def run(*args: str) -> int:
        rc = main(["-vv", "-i", str(inventory), *args])
        out, err = capsys.readouterr()
        outputs.append(out + err)
        clean_output(out, err)
        return rc

    assert run("provision", "--only", "storage", "--plan") == 0
    assert run("provision", "--only", "storage") == 0
    assert run("status", "--only", "storage") == 0
    assert run("status", "--only", "storage", "--output", "json") == 0
    # failures log more: a REST error, a failed job, an error whose text carries the password
    canary_sim.add_fault(action="error", status=500, message=f"Injected: echo {CANARY}", method="GET",
                         path="/api/storage/volumes", count=None)
    assert run("status", "--only", "storage") in (0, 1)
    assert run("status", "--only", "storage", "--output", "json") in (0, 1)
    assert run("teardown", "--yes", "--only", "storage") == 1
    canary_sim.app.faults.clear()
    assert run("teardown", "--yes", "--only", "storage") == 0
    # the password given the insecure way is masked as well, even when refused
    write_inventory(tmp_path, canary_sim, labctl_ontap_password_file=None, labctl_ontap_password=CANARY)
    assert run("provision", "--only", "storage") == 2
    # and the console script, in its own process, with a persistent failure
    write_inventory(tmp_path, canary_sim)
    canary_sim.add_fault(action="error", status=503, message=f"Injected: {CANARY}", count=None)
    proc = subprocess.run(
        [sys.executable, "-m", "labctl", "-vv", "-i", str(inventory), "provision", "--only", "storage"],
        capture_output=True, env={**os.environ, "LABCTL_STATE_DIR": str(state)}, timeout=120,
    )
    canary_sim.app.faults.clear()
    assert proc.returncode == 1
    outputs.append((proc.stdout + proc.stderr).decode(errors="replace"))

    text = "\n".join(outputs)
    assert "********" in text  # the injected messages were shown, masked
    leaked = [line for line in text.splitlines() if CANARY[:12] in line]
    assert not leaked, leaked
    assert (state / "labctl.log").stat().st_size > 0 and (state / "ledger.json").exists()
    assert not _hits(state, set())
    assert not _hits(inventory, set())
    assert not _hits(tmp_path, {secret_file})  # anything else labctl wrote next to them


def test_state_is_owner_only(lab):
    assert lab.run("provision", "--only", "storage")[0] == 0
    state = lab.root / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for path in state.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o700, path
        else:
            assert mode & 0o077 == 0, f"{path} is {oct(mode)}"


def test_export_rules_name_only_the_inventory_hosts(lab):
    assert lab.run("provision", "--only", "storage")[0] == 0
    policies = [p for p in lab.sim.state()["export_policies"].values() if p["name"] == "labctl_fg_llm"]
    assert len(policies) == 1
    clients = [sorted(c["match"] for c in r["clients"]) for r in policies[0]["rules"]]
    assert clients == [sorted(GPU_HOSTS.values())]


def test_tls_trusts_the_inventory_ca_not_the_environment(lab, monkeypatch, tmp_path):
    from labctl.sim.tls import make_certificates

    other_ca, _, _ = make_certificates(tmp_path / "other", "127.0.0.1")
    lab.configure(labctl_ontap_ca_file=str(other_ca))
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(var, str(lab.sim.ca_file))  # would make requests trust the simulator
    rc, out, err = lab.run("status", "--only", "storage")
    assert rc == 2, out + err
    assert "TLS verification of 127.0.0.1" in err and "labctl_ontap_ca_file" in err
    clean_output(out, err)
    assert lab.sim.requests() == []  # not one API call went over the untrusted connection


def test_no_ca_file_is_refused_before_connecting(lab):
    lab.configure(labctl_ontap_ca_file=None)
    rc, out, err = lab.run("status", "--only", "storage")
    assert rc == 2 and "TLS to ONTAP is always verified" in err
    assert lab.sim.requests() == []


def test_run_bundles_are_owner_only(tmp_path, monkeypatch):
    from labctl.errors import HostError
    from labctl.experiment import run

    modes: dict[Path, int] = {}

    def host_down(*_: object) -> str:  # while the run starts, its bundle is owner-only
        (bundle,) = (tmp_path / "runs").iterdir()
        modes.update({p: stat.S_IMODE(p.stat().st_mode) for p in (bundle, bundle / "raw")})
        raise HostError("host down")

    monkeypatch.setattr(run, "resolve_hosts", lambda inventory, pattern: [])
    monkeypatch.setattr(run, "choose_version", host_down)
    experiment = Path(__file__).resolve().parents[2] / "templates" / "experiment.sim.yaml"
    os.umask(old := os.umask(0o022))
    try:
        with pytest.raises(HostError):
            run.start_run(experiment, tmp_path / "inventory", tmp_path / "runs")
    finally:
        os.umask(old)
    assert len(modes) == 2 and set(modes.values()) == {0o700}, modes
    assert list((tmp_path / "runs").iterdir()) == []  # a run that failed to start leaves nothing behind
