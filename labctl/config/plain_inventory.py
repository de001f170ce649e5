"""Read a plain YAML inventory directory without importing Ansible (a fast path of `read_inventory`).

Ansible's loader costs ~0.25 s of start-up per command. Most lab inventories are plain: YAML files of groups
with `hosts`/`vars`/`children`, `group_vars/<group>.yml` and `host_vars/<host>.yml`, no vault, no templates.
For those this module gives what Ansible gives (tests/unit/test_plain_inventory.py compares the two on
generated inventories). Anything beyond that returns None, and the caller uses Ansible: any other file or
directory, an ansible.cfg or ANSIBLE_* setting that can change inventory loading, YAML tags (`!vault`,
`!unsafe`), Jinja markers, host ranges or ports, nested child groups, non-string names, `ansible_host` set at
group level, and every case where Ansible would warn or fail.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labctl.config.yaml_budget import ALIAS_FIX, AliasBudgetExceeded, load_yaml
from labctl.errors import ConfigError

YAML_EXTS = (".yml", ".yaml")
SECTIONS = ("hosts", "vars", "children")
JINJA = ("{{", "{%", "{#")
# Ansible settings that change which files are read, how they are parsed or how vars combine
ANSIBLE_CONFIG_FILES = ("ansible.cfg", "~/.ansible.cfg", "/etc/ansible/ansible.cfg")
HARMLESS_ENV = {"ANSIBLE_VAULT_PASSWORD_FILE", "ANSIBLE_INVENTORY_UNPARSED_WARNING", "ANSIBLE_NOCOLOR",
                "ANSIBLE_FORCE_COLOR", "ANSIBLE_DEPRECATION_WARNINGS", "ANSIBLE_HOST_KEY_CHECKING"}


class NeedsAnsible(Exception):  # noqa: N818 - a signal, not an error
    """The inventory uses something only Ansible's loader handles."""


@dataclass
class PlainInventory:
    """The `all` group's vars and every group's (host name, address) list, in Ansible's order."""

    all_vars: dict[str, Any]
    groups: dict[str, list[tuple[str, str]]]


@dataclass
class _Group:
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    has_parent: bool = False


def read_plain(path: Path) -> PlainInventory | None:
    """The inventory directory `path` read as Ansible would, or None when only Ansible can read it."""
    try:
        _check_settings()
        return _read(path)
    except NeedsAnsible:
        return None


def _check_settings() -> None:
    if any(k.startswith("ANSIBLE_") and k not in HARMLESS_ENV for k in os.environ):
        raise NeedsAnsible
    if any(Path(p).expanduser().exists() for p in ANSIBLE_CONFIG_FILES):
        raise NeedsAnsible


def _load(path: Path) -> Any:
    """One file as plain YAML; a vault file, a YAML tag, non-UTF-8 text or bad YAML → Ansible."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise NeedsAnsible from None
    if text.lstrip().startswith("$ANSIBLE_VAULT") or ("!" in text and _has_tag(text)):
        raise NeedsAnsible
    try:
        data = load_yaml(text)
    except AliasBudgetExceeded as exc:  # Ansible would expand it: refuse here, naming the file
        raise ConfigError(f"not valid YAML: {exc}", where=str(path), fix=ALIAS_FIX) from None
    except yaml.YAMLError:
        raise NeedsAnsible from None
    _check_values(data)
    return data


def _has_tag(text: str) -> bool:
    try:
        return any(isinstance(t, yaml.TagToken) for t in yaml.scan(text))
    except yaml.YAMLError:
        return True


def _check_values(value: Any) -> None:
    """Only str keys, plain scalars, lists and mappings; no Jinja markers anywhere."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str) or any(j in k for j in JINJA):
                raise NeedsAnsible
            _check_values(v)
    elif isinstance(value, list):
        for v in value:
            _check_values(v)
    elif isinstance(value, str):
        if any(j in value for j in JINJA):
            raise NeedsAnsible
    elif not (value is None or isinstance(value, bool | int | float)):
        raise NeedsAnsible  # dates, binary, sets: Ansible's loader may differ


def _listing(path: Path) -> tuple[list[Path], dict[str, Path], dict[str, Path]]:
    """Inventory files, group_vars files by group and host_vars files by host; anything else → Ansible."""
    files: list[Path] = []
    vars_dirs: dict[str, dict[str, Path]] = {"group_vars": {}, "host_vars": {}}
    for entry in sorted(path.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and entry.name in vars_dirs:
            for f in sorted(entry.iterdir()):
                if f.name.startswith("."):
                    continue
                if not f.is_file() or f.suffix not in YAML_EXTS or f.stem in vars_dirs[entry.name]:
                    raise NeedsAnsible
                vars_dirs[entry.name][f.stem] = f
        elif entry.is_file() and entry.suffix in YAML_EXTS:
            files.append(entry)
        else:
            raise NeedsAnsible
    if not files:
        raise NeedsAnsible
    return files, vars_dirs["group_vars"], vars_dirs["host_vars"]


class _Builder:
    """Ansible's YAML inventory plugin and InventoryData, for the plain subset."""

    def __init__(self) -> None:
        self.groups: dict[str, _Group] = {"all": _Group(), "ungrouped": _Group(has_parent=True)}
        self.groups["all"].children.append("ungrouped")
        self.group_vars: dict[str, dict[str, Any]] = {}
        self.hosts: dict[str, dict[str, Any]] = {}  # host → its inventory vars, in order of appearance

    def parse_file(self, data: Any) -> None:
        if not isinstance(data, Mapping) or "plugin" in data:
            raise NeedsAnsible
        for name, body in data.items():
            self.parse_group(name, body)

    def parse_group(self, name: str, body: Any) -> None:
        if not isinstance(body, Mapping | None) or not name.strip() or name == "ungrouped":
            raise NeedsAnsible
        self.groups.setdefault(name, _Group())
        body = body or {}
        if set(body) - set(SECTIONS) or any(not isinstance(body[s], Mapping | None) for s in body):
            raise NeedsAnsible
        for key, value in (body.get("vars") or {}).items():
            self.group_vars.setdefault(name, {})[key] = value
        for host, hvars in (body.get("hosts") or {}).items():
            plain_name = host and not any(c in "[]:," or c.isspace() for c in host)
            if not plain_name or not isinstance(hvars, Mapping | None):
                raise NeedsAnsible
            if host not in self.hosts:
                self.hosts[host] = {}
            self.hosts[host].update(hvars or {})
            if host not in self.groups[name].hosts:
                self.groups[name].hosts.append(host)
        for child, cbody in (body.get("children") or {}).items():
            if name != "all" or child == "all":
                raise NeedsAnsible  # nested children: Ansible's host order depends on set iteration
            self.parse_group(child, cbody)
            if child not in self.groups["all"].children:
                self.groups["all"].children.append(child)
            self.groups[child].has_parent = True

    def reconcile(self) -> None:
        for name, group in self.groups.items():
            if name != "all" and not group.has_parent:
                self.groups["all"].children.append(name)
                group.has_parent = True
        for host in self.hosts:
            if not any(host in g.hosts for n, g in self.groups.items() if n not in ("all", "ungrouped")):
                self.groups["ungrouped"].hosts.append(host)
        if set(self.groups) & set(self.hosts):
            raise NeedsAnsible  # Ansible warns: a name used for a group and a host

    def members(self, name: str) -> list[str]:
        """Group.get_hosts(): own hosts, then each child's, first seen first."""
        group, seen, out = self.groups[name], set(), []
        for g in [name, *group.children]:
            for h in self.groups[g].hosts:
                if h not in seen:
                    seen.add(h)
                    out.append(h)
        return out


def _read(path: Path) -> PlainInventory:
    files, group_files, host_files = _listing(path)
    b = _Builder()
    for f in files:
        b.parse_file(_load(f))
    b.reconcile()
    all_vars = dict(b.group_vars.get("all", {}))
    for name, f in group_files.items():
        data = _load(f)
        if not isinstance(data, Mapping | None):
            raise NeedsAnsible
        if name == "all":
            all_vars.update(data or {})
        elif name in b.groups and "ansible_host" in (data or {}):
            raise NeedsAnsible
    if any("ansible_host" in v for n, v in b.group_vars.items() if n != "all") or "ansible_host" in all_vars:
        raise NeedsAnsible
    addresses = {h: v.get("ansible_host", h) for h, v in b.hosts.items()}
    for host, f in host_files.items():
        data = _load(f)
        if not isinstance(data, Mapping | None):
            raise NeedsAnsible
        if host in addresses and "ansible_host" in (data or {}):
            addresses[host] = data["ansible_host"]
    return PlainInventory(
        all_vars=all_vars,
        groups={name: [(h, str(addresses[h])) for h in b.members(name)] for name in b.groups},
    )
