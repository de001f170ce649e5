"""The plain inventory reader gives what Ansible's loader gives, and hands anything else to Ansible."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labctl.config.inventory import _load, _origins, read_inventory
from labctl.config.plain_inventory import read_plain
from tests.unit.test_inventory import write

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_ansible_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in [k for k in os.environ if k.startswith("ANSIBLE_")]:
        monkeypatch.delenv(key)


def both(path: Path) -> tuple[object, object]:
    """(plain reader's result, Ansible's), as comparable plain data."""
    plain = read_plain(path)
    assert plain is not None, f"{path} should be readable without Ansible"
    origins, encrypted = _origins(path)
    ans = _load(path, origins, encrypted)
    ans_groups = {g: [(h.name, h.address) for h in hosts] for g, hosts in ans.groups.items()}
    return (plain.all_vars, plain.groups), (ans.lab_vars, ans_groups)


def test_sample_inventory_reads_the_same(tmp_path: Path) -> None:
    inv = shutil.copytree(REPO / "inventories" / "sample", tmp_path / "inv")
    plain, ansible = both(inv)
    assert plain == ansible
    assert [h for h, _ in plain[1]["gpu_hosts"]]  # the sample has GPU hosts


def test_read_inventory_takes_the_plain_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inv = shutil.copytree(REPO / "inventories" / "sample", tmp_path / "inv")

    def no_ansible(*_a: object) -> None:
        raise AssertionError("Ansible's loader was used for a plain inventory")

    monkeypatch.setattr("labctl.config.inventory._load", no_ansible)
    data = read_inventory(inv)
    assert data.groups["gpu_hosts"] and data.lab_vars


names = st.sampled_from(["dgx1", "dgx2", "gpu-a", "node_3", "10.0.0.7", "h.example.com"])
group_names = st.sampled_from(["gpu_hosts", "ontap", "extra", "web"])
values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**12) | st.text("abc xyz-_/.:", max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner,
                                                               max_size=3),
    max_leaves=6,
)
var_maps = st.dictionaries(st.sampled_from(["labctl_svm", "ansible_user", "x", "y", "nested"]), values,
                           max_size=4)
host_vars = st.none() | st.dictionaries(
    st.sampled_from(["ansible_host", "ansible_user", "z"]), st.sampled_from(["10.1.1.1", "10.1.1.2", "u"]),
    max_size=2)
group_bodies = st.fixed_dictionaries({}, optional={
    "hosts": st.dictionaries(names, host_vars, max_size=3),
    "vars": var_maps,
})


@st.composite
def inventories(draw: st.DrawFn) -> dict[str, object]:
    children = draw(st.dictionaries(group_names, group_bodies | st.none(), max_size=3))
    top: dict[str, object] = {"all": {"children": children}}
    if draw(st.booleans()):
        top["all"]["vars"] = draw(var_maps)  # type: ignore[index]
    if draw(st.booleans()):
        top["all"]["hosts"] = draw(st.dictionaries(names, host_vars, max_size=2))  # type: ignore[index]
    for extra in draw(st.lists(group_names, max_size=2, unique=True)):
        top.setdefault(extra, draw(group_bodies))
    files: dict[str, object] = {"hosts.yml": top}
    if draw(st.booleans()):
        files["group_vars/all.yml"] = draw(var_maps)
    if draw(st.booleans()):
        files["more.yaml"] = {"gpu_hosts": {"hosts": draw(st.dictionaries(names, host_vars, max_size=2))}}
    for host in draw(st.lists(names, max_size=2, unique=True)):
        files[f"host_vars/{host}.yml"] = draw(host_vars) or {}
    return files


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inventories())
def test_generated_inventories_read_the_same(files: dict[str, object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inv = write(Path(tmp), files)
        plain = read_plain(inv)
        assert plain is not None  # host and group names are disjoint here: always the plain path
        origins, encrypted = _origins(inv)
        ans = _load(inv, origins, encrypted)
        assert plain.all_vars == ans.lab_vars
        assert plain.groups == {g: [(h.name, h.address) for h in hs] for g, hs in ans.groups.items()}


@pytest.mark.parametrize("files", [
    {"hosts.yml": {"gpu_hosts": {"hosts": {"dgx[1:4]": None}}}},  # a host range
    {"hosts.yml": {"gpu_hosts": {"hosts": {"dgx1:2222": None}}}},  # a port
    {"hosts.yml": {"all": {"children": {"gpu": {"children": {"a": {"hosts": {"h": None}}}}}}}},  # nesting
    {"hosts.yml": {"gpu_hosts": {"hosts": {"h": None}}}, "group_vars/all.yml": {"x": "{{ y }}"}},
    {"hosts.yml": {"gpu_hosts": {"hosts": {"h": None}}}, "group_vars/all.yml": "x: !unsafe '{ a }'\n"},
    {"hosts.yml": {"gpu_hosts": {"hosts": {"h": None}}}, "group_vars/all.yml": "x: !vault |\n  abc\n"},
    {"hosts.ini": "[gpu_hosts]\nh\n"},  # INI
    {"hosts.yml": {"gpu_hosts": {"hosts": {"h": None}, "vars": {"ansible_host": "10.0.0.1"}}}},
    {"hosts.yml": {"gpu_hosts": {"hosts": {"h": None}}}, "group_vars/all/a.yml": {"x": 1}},  # a vars dir
    {"hosts.yml": {"plugin": "constructed"}},
    {"hosts.yml": {"gpu_hosts": {"hosts": {"h": None}, "vras": {}}}},  # Ansible warns and skips
])
def test_anything_beyond_plain_goes_to_ansible(tmp_path: Path, files: dict[str, object]) -> None:
    assert read_plain(write(tmp_path, files)) is None


def test_ansible_settings_send_it_to_ansible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inv = write(tmp_path / "inv", {"hosts.yml": {"gpu_hosts": {"hosts": {"h": None}}}})
    assert read_plain(inv) is not None
    monkeypatch.setenv("ANSIBLE_HASH_BEHAVIOUR", "merge")
    assert read_plain(inv) is None
    monkeypatch.delenv("ANSIBLE_HASH_BEHAVIOUR")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    assert read_plain(inv) is None


def _shipped(kind: str, root: Path) -> Path:
    """An inventory as labctl ships or writes it: the sample, `labctl sim up`'s, the ONTAP tests'."""
    from types import SimpleNamespace

    from labctl.testlab.lab import write_inventory as sim_inventory
    from labctl.testlab.sshhost import SimHost
    from tests.ontap.conftest import write_inventory as ontap_inventory

    if kind == "sample":
        return shutil.copytree(REPO / "inventories" / "sample", root / "inv")
    if kind == "sim up":
        hosts = [SimHost(f"gpu{i}", f"127.0.0.1{i}", 2200 + i, str(root / f"gpu{i}")) for i in (1, 2)]
        return sim_inventory(root, hosts, {"labctl_svm": "svm1", "labctl_ontap_host": "127.0.0.1"})
    sim = SimpleNamespace(host="127.0.0.1", port=8443, username="admin", password="pw", ca_file=root / "ca")
    return ontap_inventory(root, sim)


@pytest.mark.parametrize("kind", ["sample", "sim up", "ontap tests"])
def test_every_shipped_inventory_reads_the_same_without_ansible(tmp_path: Path, kind: str) -> None:
    inv = _shipped(kind, tmp_path)
    plain, full = read_inventory(inv), read_inventory(inv, full=True)
    assert not plain.complete and plain.manager is None  # read without Ansible's loader
    assert full.complete and full.manager is not None
    assert plain.lab_vars == full.lab_vars and plain.origins == full.origins
    assert {g: [(h.name, h.address) for h in hs] for g, hs in plain.groups.items()} == {
        g: [(h.name, h.address) for h in hs] for g, hs in full.groups.items()}
    assert plain.groups["gpu_hosts"]


def test_a_plain_read_asked_for_hosts_answers_with_ansibles(tmp_path: Path) -> None:
    inv = _shipped("sim up", tmp_path)
    (host,) = read_inventory(inv).hosts("gpu2")  # patterns and host variables are Ansible's
    assert host.address == "127.0.0.12" and host.vars["ansible_port"] == 2202
    assert host.vars["labctl_sim_host_root"] == str(tmp_path / "gpu2")
