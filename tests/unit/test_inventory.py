"""The inventory reader (Ansible's loader, once per command) gives what `ansible-inventory` gives."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labctl.config.inventory import read_inventory
from labctl.errors import ConfigError
from labctl.hosts.runner import inventory_hosts

REPO = Path(__file__).resolve().parents[2]


def write(root: Path, files: dict[str, object]) -> Path:
    for rel, data in files.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return root


def ansible_inventory(path: Path, *options: str) -> dict:
    exe = Path(sys.executable).parent / "ansible-inventory"
    out = subprocess.run([str(exe), "-i", str(path), "--list", *options], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def members(listing: dict, group: str) -> list[str]:
    entry = listing.get(group, {})
    out = list(entry.get("hosts", []))
    for child in entry.get("children", []):
        out += [h for h in members(listing, child) if h not in out]
    return out


MIXED = {
    "hosts.yml": {"all": {"children": {"gpu_hosts": {"children": {
        "rack_a": {"hosts": {"dgx1": {"ansible_host": "10.0.0.11"}, "dgx2": None}},
        "rack_b": {"hosts": {"dgx3": {"ansible_port": 2222}}},
    }}}}},
    "group_vars/all.yml": {"labctl_svm": "svm1", "labctl_mount_path": "/mnt/x"},
    "group_vars/rack_b.yml": {"labctl_mount_path": "/mnt/b", "ansible_user": "lab"},
    "host_vars/dgx2.yml": {"ansible_host": "10.0.0.12", "labctl_host_workdir": "/scratch"},
}


@pytest.mark.parametrize("name", ["sample", "mixed"])
def test_reads_what_ansible_inventory_lists(tmp_path: Path, name: str) -> None:
    if name == "sample":
        inv = shutil.copytree(REPO / "inventories" / "sample", tmp_path / "inv")
    else:
        inv = write(tmp_path / "inv", MIXED)
    listing = ansible_inventory(inv)
    data = read_inventory(inv, full=True)  # the hosts' variables too
    hostvars = listing["_meta"]["hostvars"]
    for group in ("all", "gpu_hosts"):
        assert [h.name for h in data.groups[group]] == members(listing, group)
    assert data.groups["gpu_hosts"]
    for host in data.groups["all"]:
        expected = hostvars.get(host.name, {})
        assert host.address == expected.get("ansible_host", host.name)
        assert {k: v for k, v in expected.items() if k.startswith(("labctl_", "ansible_"))}.items() <= dict(
            host.vars).items()
    assert data.lab_vars == ansible_inventory(inv, "--export")["all"].get("vars", {})
    assert inventory_hosts(inv) == {h.name: dict(h.vars) for h in data.groups["gpu_hosts"]}


def test_group_and_host_vars_reach_each_host(tmp_path: Path) -> None:
    data = read_inventory(write(tmp_path / "inv", MIXED))
    hosts = {h.name: h for h in data.groups["gpu_hosts"]}
    assert hosts["dgx2"].address == "10.0.0.12" and hosts["dgx2"].vars["labctl_host_workdir"] == "/scratch"
    assert hosts["dgx3"].vars["labctl_mount_path"] == "/mnt/b" and hosts["dgx3"].vars["ansible_port"] == 2222
    assert hosts["dgx1"].vars["labctl_mount_path"] == "/mnt/x"
    assert data.lab_vars == {"labctl_svm": "svm1", "labctl_mount_path": "/mnt/x"}
    assert [h.name for h in data.hosts("gpu_hosts:!rack_b")] == ["dgx1", "dgx2"]
    assert data.hosts("no_such_group") == []


def test_loaded_once_until_a_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inv = write(tmp_path / "inv", MIXED)
    first = read_inventory(inv)
    first.lab_vars["labctl_svm"] = "changed by a caller"
    second = read_inventory(inv)
    assert second.manager is first.manager  # one Ansible load for the whole command
    assert second.lab_vars["labctl_svm"] == "svm1"  # a caller's change stays its own
    write(inv, {"group_vars/all.yml": {"labctl_svm": "svm2"}})
    assert read_inventory(inv).lab_vars == {"labctl_svm": "svm2"}
    monkeypatch.setenv("ANSIBLE_HASH_BEHAVIOUR", "merge")
    assert read_inventory(inv).manager is not second.manager  # another Ansible setting: loaded again


@pytest.mark.parametrize("rel", ["group_vars/rack_b.yml", "host_vars/dgx2.yml", "group_vars/all.yml"])
def test_bad_yaml_in_any_vars_file_names_the_file(tmp_path: Path, rel: str) -> None:
    inv = write(tmp_path / "inv", {**MIXED, rel: "a: [1, 2\nb: 3\n"})
    with pytest.raises(ConfigError) as exc:
        read_inventory(inv)
    assert exc.value.where == str(inv / rel) and "not valid YAML" in exc.value.message


def test_alias_bomb_in_host_vars_is_refused_unexpanded(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    inv = write(tmp_path / "inv", {**MIXED, "host_vars/dgx1.yml": bomb})
    with pytest.raises(ConfigError) as exc:
        read_inventory(inv)
    assert exc.value.where == str(inv / "host_vars" / "dgx1.yml")
