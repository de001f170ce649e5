"""The run's target hosts: an inventory pattern resolved by the command's one inventory load
(`labctl.config.inventory`, Ansible's own loader)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.config.inventory import read_inventory
from labctl.config.keys import default_of, resolve_dataset_dir
from labctl.errors import ConfigError
from labctl.hosts.ssh import known_hosts_from_args


@dataclass(frozen=True)
class Target:
    """One host to run on: how to reach it over SSH, and its `labctl_*` variables."""

    name: str
    address: str
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None
    python: str = "python3"
    vars: dict[str, Any] = field(default_factory=dict)

    def var(self, key: str) -> Any:
        """A lab variable of this host, else labctl's default for it (`labctl.config.keys.LabVars`)."""
        value = self.vars.get(key)
        return default_of(key) if value is None else value

    @property
    def mount(self) -> str:
        return str(self.var("labctl_mount_path"))

    @property
    def dataset_dir(self) -> str:
        return resolve_dataset_dir(self.vars.get("labctl_dataset_dir"), self.mount)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "user": self.user,
            "key_file": self.key_file,
            "known_hosts": self.known_hosts,
            "python": self.python,
        }


def resolve_hosts(inventory: Path, pattern: str) -> list[Target]:
    """Every host matching `pattern` in the inventory directory, with its variables (group_vars included).

    Raises:
        ConfigError: the inventory is missing, or the pattern matches no host.
    """
    if not Path(inventory).exists():
        raise ConfigError(
            "inventory directory not found",
            where=str(inventory),
            fix="pass -i DIR (for the simulated lab: DIR/inventory of `labctl sim up`)",
        )
    hosts = read_inventory(Path(inventory), full=True).hosts(pattern)
    if not hosts:
        raise ConfigError(
            f"the host pattern {pattern!r} matches no host of the inventory",
            where=str(inventory),
            fix="set `hosts:` in experiment.yaml to a group of the inventory (e.g. gpu_hosts)",
        )
    targets = []
    for host in hosts:
        hv = host.vars
        common = " ".join(str(hv.get(k) or "") for k in ("ansible_ssh_common_args", "ansible_ssh_extra_args"))
        targets.append(
            Target(
                name=host.name,
                address=host.address,
                port=int(hv.get("ansible_port") or 22),
                user=hv.get("ansible_user"),
                key_file=hv.get("ansible_ssh_private_key_file"),
                known_hosts=known_hosts_from_args(common),
                python=str(hv.get("ansible_python_interpreter") or "python3"),
                vars={k: v for k, v in hv.items() if k.startswith("labctl_")},
            )
        )
    return targets
