"""More netapp.ontap modules against the simulator: one playbook with every task, run twice; the second run
changes nothing. Covers volume (`auto_provision_as`), autosize, efficiency, export rules, interface migrate,
snapshot and qtree (issue 18)."""

from __future__ import annotations

import pytest

from tests.sim.test_ansible import SVM, run
from tests.sim.util import Raw

pytestmark = pytest.mark.slow

FG_SIZE = 3_000_000_001  # bytes: splits over two constituents into neither whole halves nor 4 KiB blocks
TASKS = [
    {"name": "auto-provisioned FlexGroup", "netapp.ontap.na_ontap_volume": {
        **SVM, "name": "fg_auto", "auto_provision_as": "flexgroup", "size": FG_SIZE, "size_unit": "bytes",
        "size_change_threshold": 0, "space_guarantee": "none"}},
    {"name": "FlexVol", "netapp.ontap.na_ontap_volume": {
        **SVM, "name": "v_mods", "aggregate_name": "aggr1", "size": 2, "size_unit": "gb",
        "junction_path": "/v_mods", "space_guarantee": "none"}},
    {"name": "autosize", "netapp.ontap.na_ontap_volume_autosize": {
        **SVM, "volume": "v_mods", "mode": "grow", "grow_threshold_percent": 90, "maximum_size": "4g"}},
    {"name": "efficiency", "netapp.ontap.na_ontap_volume_efficiency": {
        **SVM, "path": "/vol/v_mods", "enable_compression": True}},
    {"name": "export policy", "netapp.ontap.na_ontap_export_policy": {**SVM, "name": "mods_policy"}},
    {"name": "export rule at a sparse index", "netapp.ontap.na_ontap_export_policy_rule": {
        **SVM, "name": "mods_policy", "rule_index": 10, "client_match": ["10.1.0.0/24"], "ro_rule": ["sys"],
        "rw_rule": ["sys"], "super_user_security": ["none"], "protocol": ["nfs"]}},
    {"name": "interface migrate", "netapp.ontap.na_ontap_interface": {
        **SVM, "interface_name": "lif_n2", "current_node": "cluster1-01", "current_port": "e0c"}},
    {"name": "snapshot", "netapp.ontap.na_ontap_snapshot": {
        **SVM, "volume": "v_mods", "snapshot": "s1", "comment": "before training"}},
    {"name": "qtree", "netapp.ontap.na_ontap_qtree": {
        **SVM, "flexvol_name": "v_mods", "name": "q1", "unix_permissions": "750"}},
]


def test_modules_converge_and_rerun_without_change(ontap_sim, tmp_path):
    sim = ontap_sim
    assert run(sim, tmp_path / "first", "mods", TASKS)["changed"] == len(TASKS)
    raw = Raw(sim)
    fg = raw("GET", "/api/storage/volumes?name=fg_auto&fields=style,constituent_count,space.size").json()
    assert fg["records"][0]["style"] == "flexgroup" and fg["records"][0]["constituent_count"] == 2
    assert fg["records"][0]["space"]["size"] == FG_SIZE
    lif = raw("GET", "/api/network/ip/interfaces?name=lif_n2&fields=location").json()["records"][0]
    assert lif["location"]["node"]["name"] == "cluster1-01" and lif["location"]["port"]["name"] == "e0c"
    assert lif["location"]["home_node"]["name"] == "cluster1-02"
    assert (sim.data_dir / "llm-lab" / "v_mods" / "q1").is_dir()
    writes_before = [c for c in sim.requests() if c["method"] != "GET"]
    assert run(sim, tmp_path / "second", "mods", TASKS)["changed"] == 0
    assert [c for c in sim.requests() if c["method"] != "GET"] == writes_before
