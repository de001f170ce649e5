"""Read an Ansible inventory directory the way the playbooks see it: hosts, groups and the `all` group's vars.

Ansible's own loader does the work (InventoryManager + VariableManager + DataLoader, with vault secrets from
`$ANSIBLE_VAULT_PASSWORD_FILE`). A plain YAML pass over the same files only finds which file set each key, so
that a validation error can name it, and catches YAML syntax errors with their line number.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labctl.config.plain_inventory import read_plain
from labctl.config.yaml_budget import ALIAS_FIX, AliasBudgetExceeded, load_yaml
from labctl.errors import ConfigError

LAB_GROUP = "gpu_hosts"
VAULT_HEADER = "$ANSIBLE_VAULT"


@dataclass(frozen=True)
class InventoryHost:
    """One host of the inventory: its inventory name and the address Ansible connects to."""

    name: str
    address: str


@dataclass
class InventoryData:
    """What labctl needs from an inventory directory."""

    path: Path
    lab_vars: dict[str, Any]
    origins: dict[str, str] = field(default_factory=dict)
    vaulted: set[str] = field(default_factory=set)
    groups: dict[str, list[InventoryHost]] = field(default_factory=dict)

    def where(self, key: str) -> str:
        """The file that set `key`, else the file where it belongs (group_vars/all.yml)."""
        return self.origins.get(key, str(self.path / "group_vars" / "all.yml"))


class _TolerantLoader(yaml.SafeLoader):
    """SafeLoader that accepts Ansible's `!vault` and `!unsafe` tags (only key names matter here)."""


_TolerantLoader.add_constructor("!vault", lambda loader, node: "<vault>")
_TolerantLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _scan(path: Path) -> Any:
    """YAML-parse one inventory file; None for vault-encrypted files.

    Raises:
        ConfigError: the file is not valid YAML (with its line number).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start})", where=str(path), fix="save the file as UTF-8"
        ) from None
    if text.lstrip().startswith(VAULT_HEADER):
        return None
    try:
        return load_yaml(text, _TolerantLoader)
    except AliasBudgetExceeded as exc:
        raise ConfigError(f"not valid YAML: {exc}", where=str(path), fix=ALIAS_FIX) from None
    except RecursionError:
        raise ConfigError(
            "not valid YAML: nested too deeply", where=str(path), fix="fix the YAML structure"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(
            f"not valid YAML{line}: {getattr(exc, 'problem', exc)}",
            where=str(path),
            fix="fix the YAML syntax (indentation, quotes, colons)",
        ) from None


def _inventory_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.iterdir()
        if p.is_file() and p.suffix in (".yml", ".yaml", ".json", "") and not p.name.startswith(".")
    )


def _all_group_var_files(root: Path) -> list[Path]:
    gv = root / "group_vars"
    files = [gv / f"all{ext}" for ext in (".yml", ".yaml", ".json", "")]
    files = [f for f in files if f.is_file()]
    if (gv / "all").is_dir():
        files += sorted(p for p in (gv / "all").iterdir() if p.is_file() and not p.name.startswith("."))
    return files


def _origins(root: Path) -> tuple[dict[str, str], list[Path]]:
    """Map each key of the `all` group to the file that sets it (later files win, as in Ansible)."""
    origins: dict[str, str] = {}
    encrypted: list[Path] = []
    for path in _inventory_files(root):
        data = _scan(path)
        if data is None:
            continue
        top = data.get("all") if isinstance(data, Mapping) else None
        vars_ = top.get("vars") if isinstance(top, Mapping) else None
        if isinstance(vars_, Mapping):
            origins.update({str(k): str(path) for k in vars_})
    for path in _all_group_var_files(root):
        data = _scan(path)
        if data is None:
            encrypted.append(path)
        elif isinstance(data, Mapping):
            origins.update({str(k): str(path) for k in data})
        elif data is not None:
            raise ConfigError(
                "must be a mapping of variable names to values",
                where=str(path),
                fix="write `key: value` lines at the top level",
            )
    return origins, encrypted


def plain_value(value: Any) -> Any:
    """Ansible's tagged values as plain Python values (vault-encrypted strings are left as they are)."""
    from ansible.parsing.vault import EncryptedString

    if isinstance(value, EncryptedString | bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain_value(v) for v in value]
    return value


def _vault_secrets(loader: Any) -> list[tuple[str, Any]]:
    from ansible.parsing.vault import get_file_vault_secret

    path = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    if not path:
        return []
    try:
        secret = get_file_vault_secret(filename=path, vault_id="default", loader=loader)
        secret.load()
    except Exception as exc:  # noqa: BLE001 - Ansible raises several types here
        raise ConfigError(
            f"cannot read the vault password: {exc}",
            where="$ANSIBLE_VAULT_PASSWORD_FILE",
            fix="point ANSIBLE_VAULT_PASSWORD_FILE at a readable vault password file",
        ) from None
    return [("default", secret)]


def read_inventory(path: Path) -> InventoryData:
    """Load hosts, groups and the lab (`all` group) vars of an inventory directory.

    Raises:
        ConfigError: the directory is missing or empty, a file is not valid YAML, or a vault value
            cannot be decrypted.
    """
    if not path.is_dir():
        raise ConfigError(
            f"inventory directory {path} does not exist",
            where="-i / $LABCTL_INVENTORY",
            fix="pass -i DIR, set LABCTL_INVENTORY, or copy inventories/sample to inventories/lab",
        )
    if not _inventory_files(path):
        raise ConfigError(
            f"no inventory file (hosts.yml) in {path}",
            where=str(path),
            fix="create hosts.yml with a gpu_hosts group (see inventories/sample/hosts.yml)",
        )
    origins, encrypted = _origins(path)
    plain = None if encrypted else read_plain(path)
    if plain is not None:
        groups = {g: [InventoryHost(h, a) for h, a in hosts] for g, hosts in plain.groups.items()}
        return InventoryData(path=path, lab_vars=plain.all_vars, origins=origins, groups=groups)
    return read_with_ansible(path, origins, encrypted)


def read_with_ansible(path: Path, origins: dict[str, str], encrypted: list[Path]) -> InventoryData:
    """`read_inventory` through Ansible's InventoryManager (any inventory Ansible reads)."""
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import EncryptedString, VaultHelper, VaultLib
    from ansible.vars.manager import VariableManager
    from ansible.vars.plugins import get_vars_from_inventory_sources

    loader = DataLoader()
    secrets = _vault_secrets(loader)
    loader.set_vault_secrets(secrets)
    try:
        inventory = InventoryManager(loader=loader, sources=[str(path)])
        variables = VariableManager(loader=loader, inventory=inventory)
        all_group = inventory.groups["all"]
        raw = dict(all_group.get_vars())
        raw.update(get_vars_from_inventory_sources(loader, [str(path)], [all_group], "all"))
        groups = {
            name: [
                InventoryHost(h.name, str(variables.get_vars(host=h).get("ansible_host", h.name)))
                for h in group.get_hosts()
            ]
            for name, group in inventory.groups.items()
        }
    except AnsibleError as exc:
        fix = (
            "set ANSIBLE_VAULT_PASSWORD_FILE to the vault password file"
            if "vault" in str(exc).lower()
            else "fix the inventory so that `ansible-inventory -i DIR --list` accepts it"
        )
        raise ConfigError(
            f"Ansible cannot load the inventory: {exc.message}", where=str(path), fix=fix
        ) from None

    data = InventoryData(path=path, lab_vars={}, origins=origins, groups=groups)
    for key, value in raw.items():
        if isinstance(value, EncryptedString):
            if not secrets:
                raise ConfigError(
                    "the value is vault-encrypted but no vault password is available",
                    where=f"{data.where(key)}: {key}",
                    fix="set ANSIBLE_VAULT_PASSWORD_FILE to the vault password file",
                )
            try:
                value = VaultLib(secrets).decrypt(VaultHelper.get_ciphertext(value, with_tags=False))
            except AnsibleError as exc:
                raise ConfigError(
                    f"cannot decrypt the vault value: {exc.message}",
                    where=f"{data.where(key)}: {key}",
                    fix="check ANSIBLE_VAULT_PASSWORD_FILE (wrong vault password?)",
                ) from None
            value = value.decode("utf-8")
            data.vaulted.add(key)
        elif key not in origins and encrypted:
            data.vaulted.add(key)
            origins[key] = str(encrypted[0])
        data.lab_vars[key] = plain_value(value)
    _template(data, loader, {k: v for k, v in raw.items() if not isinstance(v, EncryptedString)})
    return data


def _template(data: InventoryData, loader: Any, raw: dict[str, Any]) -> None:
    """Render `{{ … }}` in lab vars against the other lab vars (as Ansible would for the playbooks)."""
    from ansible.errors import AnsibleError
    from ansible.template import Templar

    pending = {k: v for k, v in raw.items() if isinstance(v, str) and "{{" in v and k not in data.vaulted}
    if not pending:
        return
    templar = Templar(loader=loader, variables=raw)
    for key, value in pending.items():
        try:
            data.lab_vars[key] = plain_value(templar.template(value))
        except AnsibleError as exc:
            raise ConfigError(
                f"cannot render the template {value!r}: {exc.message}",
                where=f"{data.where(key)}: {key}",
                fix="use only variables defined in the inventory's group_vars",
            ) from None
