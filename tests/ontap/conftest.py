"""Fixtures for the storage tests: an inventory directory pointing at the `ontap_sim` fixture."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from netapp_ontap import HostConnection

from labctl.cli import main

GPU_HOSTS = {"gpu1": "127.0.0.11", "gpu2": "127.0.0.12"}
MUTATING = {"POST", "PATCH", "DELETE"}


def write_inventory(root: Path, sim: Any, **overrides: Any) -> Path:
    """An inventory dir for `sim`: password in a 0600 file, the sim's CA, a gpu_hosts group of two."""
    inventory = root / "inventory"
    (inventory / "group_vars").mkdir(parents=True, exist_ok=True)
    secret = root / "secrets" / "ontap_password"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text(sim.password + "\n", encoding="utf-8")
    secret.chmod(0o600)
    hosts = {
        "all": {"children": {"gpu_hosts": {"hosts": {n: {"ansible_host": a} for n, a in GPU_HOSTS.items()}}}}
    }
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
    settings: dict[str, Any] = {
        "labctl_ontap_host": sim.host,
        "labctl_ontap_port": sim.port,
        "labctl_ontap_username": sim.username,
        "labctl_ontap_password_file": "../secrets/ontap_password",
        "labctl_ontap_ca_file": str(sim.ca_file),
        "labctl_ontap_retry_backoff": 0.01,
        "labctl_ontap_timeout": 5,
        **overrides,
    }
    settings = {k: v for k, v in settings.items() if v is not None}
    (inventory / "group_vars" / "all.yml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    return inventory


@dataclass
class Lab:
    """One lab against the simulator: its inventory, state dir, and the CLI run in-process."""

    sim: Any
    root: Path
    inventory: Path
    capsys: Any

    def configure(self, **overrides: Any) -> None:
        """Rewrite group_vars/all.yml with these settings on top of the defaults."""
        write_inventory(self.root, self.sim, **overrides)

    def run(self, *args: str) -> tuple[int, str, str]:
        """`labctl -i INVENTORY ARGS…` → (exit code, stdout, stderr)."""
        self.capsys.readouterr()
        rc = main(["-i", str(self.inventory), *args])
        out, err = self.capsys.readouterr()
        return rc, out, err

    def mark(self) -> int:
        """A position in the simulator's request log."""
        return len(self.sim.requests())

    def mutations(self, since: int = 0) -> list[tuple[str, str]]:
        """(method, path) of the POST/PATCH/DELETE calls since `since`."""
        return [(r["method"], r["path"]) for r in self.sim.requests()[since:] if r["method"] in MUTATING]

    @contextlib.contextmanager
    def sdk(self) -> Iterator[HostConnection]:
        """An SDK connection to the simulator (for checking state independently of labctl)."""
        conn = HostConnection(
            self.sim.host,
            port=self.sim.port,
            username=self.sim.username,
            password=self.sim.password,
            verify=str(self.sim.ca_file),
        )
        conn.session.trust_env = False
        with conn:
            yield conn


@pytest.fixture
def lab(ontap_sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> Lab:
    """A fresh lab (seeded simulator, empty state dir) with wide, plain console output."""
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("LABCTL_INVENTORY", raising=False)
    ontap_sim.set_job_mode("immediate")
    return Lab(ontap_sim, tmp_path, write_inventory(tmp_path, ontap_sim), capsys)
