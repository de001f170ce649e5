"""The reader of the inventory: Ansible's own loader, once per command, for everyone who needs the hosts'
variables or Ansible's host patterns; for the lab config alone, a plain YAML inventory is read without it.

Ansible's InventoryManager + VariableManager + DataLoader (vault secrets from `$ANSIBLE_VAULT_PASSWORD_FILE`)
give the lab (`all` group) vars, every group's hosts and each host's `labctl_*`/`ansible_*` variables exactly
as the playbooks see them. The result is kept for as long as no file of the inventory (nor an `ANSIBLE_*`
setting) changes, so the lab config, the hosts phase and `labctl run` share one load. A plain YAML pass over
the same files first catches syntax errors (with their line number) and alias bombs, and finds which file set
each lab key, so that a validation error can name it.

Ansible's loader costs ~0.25 s of start-up per command (its imports). A command that needs only the lab
config (`provision --only storage`, `status`, a storage teardown) reads a plain YAML inventory through
`plain_inventory.py` instead; anything beyond plain YAML goes to Ansible, and
tests/unit/test_plain_inventory.py holds the two equal on the sample inventory and on generated ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from labctl.config.plain_inventory import read_plain
from labctl.config.yaml_budget import ALIAS_FIX, AliasBudgetExceeded, load_yaml
from labctl.errors import ConfigError

LAB_GROUP = "gpu_hosts"
VAULT_HEADER = "$ANSIBLE_VAULT"


VAR_PREFIXES = ("labctl_", "ansible_")
VARS_EXTS = (".yml", ".yaml", ".json", "")
_CACHE: dict[tuple[Any, ...], InventoryData] = {}
_CACHE_SIZE = 8


@dataclass(frozen=True)
class InventoryHost:
    """One host of the inventory: its name, the address Ansible connects to, and its `labctl_*`/`ansible_*`
    variables (group_vars and host_vars included, read-only)."""

    name: str
    address: str
    vars: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class InventoryData:
    """What labctl needs from an inventory directory."""

    path: Path
    lab_vars: dict[str, Any]
    origins: dict[str, str] = field(default_factory=dict)
    vaulted: set[str] = field(default_factory=set)
    groups: dict[str, list[InventoryHost]] = field(default_factory=dict)
    manager: Any = field(default=None, repr=False, compare=False)  # Ansible's InventoryManager
    complete: bool = True  # False: read without Ansible (the hosts' variables are not in `groups`)

    def where(self, key: str) -> str:
        """The file that set `key`, else the file where it belongs (group_vars/all.yml)."""
        return self.origins.get(key, str(self.path / "group_vars" / "all.yml"))

    def hosts(self, pattern: str) -> list[InventoryHost]:
        """The hosts an Ansible host pattern (`gpu_hosts`, `gpu1:gpu2`, `gpu_hosts:!gpu3`…) matches, in
        Ansible's order; an empty list when none does (the caller says what to fix)."""
        from ansible import constants

        if not self.complete:
            return read_inventory(self.path, full=True).hosts(pattern)
        by_name = {h.name: h for hosts in self.groups.values() for h in hosts}
        saved = constants.HOST_PATTERN_MISMATCH  # labctl reports an empty match itself, with the fix
        constants.HOST_PATTERN_MISMATCH = "ignore"
        try:
            return [by_name[h.name] for h in self.manager.get_hosts(pattern=pattern)]
        finally:
            constants.HOST_PATTERN_MISMATCH = saved


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


def _vars_files(root: Path) -> list[Path]:
    """Every file Ansible's vars plugin may read under group_vars/ and host_vars/."""
    found = []
    for top in ("group_vars", "host_vars"):
        for dirpath, dirnames, filenames in os.walk(root / top):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found += [
                Path(dirpath) / f
                for f in sorted(filenames)
                if not f.startswith(".") and Path(f).suffix in VARS_EXTS
            ]
    return found


def _origins(root: Path) -> tuple[dict[str, str], list[Path]]:
    """Map each key of the `all` group to the file that sets it (later files win, as in Ansible), after a
    plain YAML pass over every file (syntax errors and alias bombs are reported here, naming the file)."""
    origins: dict[str, str] = {}
    encrypted: list[Path] = []
    all_files = set(_all_group_var_files(root))
    for path in _vars_files(root):
        if path not in all_files and path.is_file():
            _scan(path)
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


def read_inventory(path: Path, *, full: bool = False) -> InventoryData:
    """Load hosts, groups and the lab (`all` group) vars of an inventory directory (once while its files and
    Ansible settings stay the same; each caller gets its own lab_vars/origins to change). Without `full`, a
    plain YAML inventory is read without Ansible and its hosts come without their variables (`complete` is
    False); with it, or for any other inventory, Ansible's loader reads it.

    Raises:
        ConfigError: the directory is missing or empty, a file is not valid YAML, Ansible cannot load it,
            or a vault value cannot be decrypted.
    """
    path = Path(path)
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
    key = _fingerprint(path)
    data = _CACHE.get(key)
    if data is None:
        origins, encrypted = _origins(path)
        plain = None if full or encrypted else read_plain(path)
        if plain is not None:
            groups = {g: [InventoryHost(h, a) for h, a in hosts] for g, hosts in plain.groups.items()}
            return InventoryData(path=path, lab_vars=plain.all_vars, origins=origins, groups=groups,
                                 complete=False)
        data = _load(path, origins, encrypted)
        while len(_CACHE) >= _CACHE_SIZE:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[key] = data
    return replace(data, lab_vars=dict(data.lab_vars), origins=dict(data.origins), vaulted=set(data.vaulted))


def _fingerprint(path: Path) -> tuple[Any, ...]:
    """What a load depends on: every file of the inventory (and the vault password file) as it is now, the
    `ANSIBLE_*` settings and the working directory (where an ansible.cfg may be)."""
    files = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames):
            try:
                st = os.stat(os.path.join(dirpath, name))
            except OSError:
                continue
            files.append((dirpath, name, st.st_ino, st.st_size, st.st_mtime_ns))
    vault = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    vault_stat = None
    if vault:
        try:
            st = os.stat(vault)
            vault_stat = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            pass
    settings = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("ANSIBLE_")))
    return (str(path.resolve()), os.getcwd(), tuple(files), vault_stat, settings)


def _load(path: Path, origins: dict[str, str], encrypted: list[Path]) -> InventoryData:
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
        hosts = {h.name: _host(h, variables) for h in all_group.get_hosts()}
        groups = {name: [hosts[h.name] for h in g.get_hosts()] for name, g in inventory.groups.items()}
    except AnsibleError as exc:
        fix = (
            "set ANSIBLE_VAULT_PASSWORD_FILE to the vault password file"
            if "vault" in str(exc).lower()
            else "fix the inventory so that `ansible-inventory -i DIR --list` accepts it"
        )
        raise ConfigError(
            f"Ansible cannot load the inventory: {exc.message}", where=str(path), fix=fix
        ) from None

    data = InventoryData(path=path, lab_vars={}, origins=origins, groups=groups, manager=inventory)
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


def _host(host: Any, variables: Any) -> InventoryHost:
    """One host with its variables as a play would see them (inventory, group_vars, host_vars)."""
    hv = variables.get_vars(host=host, include_hostvars=False)
    own = {str(k): plain_value(v) for k, v in hv.items() if str(k).startswith(VAR_PREFIXES)}
    return InventoryHost(host.name, str(own.get("ansible_host") or host.name), MappingProxyType(own))


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
