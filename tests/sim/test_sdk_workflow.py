"""The lab workflow through the real netapp_ontap SDK, over HTTPS verified against the simulator's CA."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from netapp_ontap.error import NetAppRestError
from netapp_ontap.resources import Aggregate, Cluster, ExportPolicy, ExportRule, NfsService, Svm, Volume

TEN_TIB = 10 * (1 << 40)


def make_flexgroup(name: str = "fg_llm", policy: str = "default", **extra) -> Volume:
    fields = {"name": name, "svm": {"name": "llm-lab"}, "aggregates": [{"name": "aggr1"}, {"name": "aggr2"}],
              "constituents_per_aggregate": 8, "size": "10TB", "style": "flexgroup",
              "guarantee": {"type": "none"},
              "nas": {"path": f"/{name}", "export_policy": {"name": policy}, "security_style": "unix"}}
    volume = Volume(**{**fields, **extra})
    volume.post(poll=True)
    return volume


def test_version_probe_and_seed(ontap):
    cluster = Cluster()
    cluster.get(fields="version")
    assert (cluster.version.generation, cluster.version.major, cluster.version.minor) == (9, 14, 1)
    aggrs = {a.name: a for a in Aggregate.get_collection(fields="node,space")}
    assert set(aggrs) == {"aggr1", "aggr2"}
    assert aggrs["aggr1"].node.name == "cluster1-01" and aggrs["aggr2"].node.name == "cluster1-02"
    svm = Svm.find(name="llm-lab", fields="nfs,state")
    assert svm.state == "running" and svm.nfs.allowed
    service = NfsService.find(**{"svm.name": "llm-lab"})
    assert service.protocol.v41_enabled is False and service.protocol.v41_features.pnfs_enabled is False
    assert service.transport.tcp_max_transfer_size == 65536


def test_flexgroup_has_16_constituents_8_per_aggregate(ontap, sim):
    volume = make_flexgroup()
    volume.get(fields="size,style,constituent_count,nas.path")
    assert volume.style == "flexgroup" and volume.size == TEN_TIB and volume.constituent_count == 16
    assert volume.nas.path == "/fg_llm"
    members = list(Volume.get_collection(is_constituent=True, fields="name,aggregates,size,style,flexgroup",
                                         **{"flexgroup.name": "fg_llm"}))
    assert [m.name for m in members] == [f"fg_llm__{i:04d}" for i in range(1, 17)]
    assert Counter(m.aggregates[0].name for m in members) == {"aggr1": 8, "aggr2": 8}
    assert {m.size for m in members} == {TEN_TIB // 16}
    assert all(m.style == "flexgroup_constituent" and m.flexgroup.uuid == volume.uuid for m in members)
    assert "fg_llm__0001" not in {v.name for v in Volume.get_collection()}
    with pytest.raises(NetAppRestError) as err:
        Volume(uuid=members[0].uuid).get()
    assert err.value.status_code == 404
    assert (sim.data_dir / "llm-lab" / "fg_llm").is_dir()


def test_thick_flexgroup_takes_aggregate_space(ontap):
    before = {a.name: a.space.block_storage.available for a in Aggregate.get_collection(fields="space")}
    make_flexgroup(guarantee={"type": "volume"})
    after = {a.name: a.space.block_storage.available for a in Aggregate.get_collection(fields="space")}
    taken = {name: before[name] - after[name] for name in before}
    assert taken == {"aggr1": TEN_TIB // 2, "aggr2": TEN_TIB // 2}


def test_nfs_v41_pnfs_patch_is_seen_on_get(ontap):
    service = NfsService.find(**{"svm.name": "llm-lab"})
    service.protocol.v41_enabled = True
    service.protocol.v41_features.pnfs_enabled = True
    service.transport.tcp_max_transfer_size = 1048576
    service.patch()
    again = NfsService.find(**{"svm.name": "llm-lab"})
    assert again.protocol.v41_enabled is True and again.protocol.v41_features.pnfs_enabled is True
    assert again.transport.tcp_max_transfer_size == 1048576


def test_export_policy_and_rule_create_delete(ontap, raw):
    policy = ExportPolicy(name="llm_policy", svm={"name": "llm-lab"})
    policy.post()
    assert policy.id == (2 << 32) | 2
    rule = ExportRule(policy.id, clients=[{"match": "127.0.0.0/8"}], ro_rule=["sys"], rw_rule=["sys"],
                      superuser=["sys"], protocols=["nfs"])
    rule.post()
    assert rule.index == 1
    rules = list(ExportRule.get_collection(policy.id, fields="*"))
    assert [(r.index, r.clients[0].match, r.anonymous_user) for r in rules] == [(1, "127.0.0.0/8", "65534")]
    rule.delete()
    missing = raw("GET", f"/api/protocols/nfs/export-policies/{policy.id}/rules/1")
    assert missing.status_code == 404 and missing.json()["error"] == {
        "message": "entry doesn't exist", "code": "4", "target": "index"}
    policy.delete()
    assert ExportPolicy.find(name="llm_policy") is None


def test_provision_then_teardown_restores_seed_state(ontap, sim):
    seeded = sim.state()
    service = NfsService.find(**{"svm.name": "llm-lab"})
    service.protocol.v41_enabled = True
    service.protocol.v41_features.pnfs_enabled = True
    service.patch()
    policy = ExportPolicy(name="llm_policy", svm={"name": "llm-lab"})
    policy.post()
    ExportRule(policy.id, clients=[{"match": "127.0.0.1"}], ro_rule=["sys"], rw_rule=["sys"]).post()
    volume = make_flexgroup(policy="llm_policy")
    (sim.data_dir / "llm-lab" / "fg_llm" / "file").write_text("x")
    assert sim.state() != seeded

    unmount = Volume(uuid=volume.uuid)
    unmount.nas = {"path": ""}
    unmount.patch()
    Volume(uuid=volume.uuid).delete()
    policy.delete()
    service.protocol.v41_enabled = False
    service.protocol.v41_features.pnfs_enabled = False
    service.patch()
    assert sim.state() == seeded
    assert not (sim.data_dir / "llm-lab" / "fg_llm").exists()


def test_volume_location_and_required_query(ontap, sim):
    make_flexgroup()
    calls = [(c["method"], c["path"], c["query"], c["status"]) for c in sim.requests()]
    assert calls[0][:2] == ("POST", "/api/storage/volumes") and calls[0][3] == 202
    assert ("GET", "/api/storage/volumes/", "name=fg_llm", 200) in calls


def test_files_written_to_a_thin_volume_count_as_used(ontap, sim):
    volume = make_flexgroup()
    (sim.data_dir / "llm-lab" / "fg_llm" / "blob").write_bytes(b"x" * 160_000)
    time.sleep(0.3)  # the simulator re-measures a volume's directory at most every 0.25 s
    volume.get(fields="space")
    assert volume.space.used == 160_000 and volume.space.available == TEN_TIB - 160_000
    free = {a.name: a.space.block_storage.used for a in Aggregate.get_collection(fields="space")}
    assert free == {"aggr1": 80_000, "aggr2": 80_000}
