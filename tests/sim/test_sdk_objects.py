"""SVMs, interfaces, export rule re-indexing and volume changes through the SDK."""

from __future__ import annotations

import pytest
from netapp_ontap.error import NetAppRestError
from netapp_ontap.resources import ExportPolicy, ExportRule, IpInterface, NfsService, Node, Svm, Volume


def test_svm_lifecycle_with_its_defaults(ontap, sim):
    svm = Svm(name="svm2", nfs={"enabled": True})
    svm.post(poll=True)
    assert svm.uuid
    assert ExportPolicy.find(name="default", **{"svm.name": "svm2"}).id == (3 << 32) | 1
    root = Volume.find(name="svm2_root", fields="nas.path,is_svm_root")
    assert root.nas.path == "/" and root.is_svm_root
    assert NfsService.find(**{"svm.name": "svm2"}).enabled is True
    assert (sim.data_dir / "svm2" / "svm2_root").is_dir()
    svm.comment = "lab"
    svm.patch(poll=True)
    assert Svm.find(name="svm2", fields="comment").comment == "lab"
    svm.delete(poll=True)
    assert Svm.find(name="svm2") is None and not (sim.data_dir / "svm2").exists()


def test_interface_create_move_delete(ontap):
    assert [n.name for n in Node.get_collection()] == ["cluster1-01", "cluster1-02"]
    lif = IpInterface(name="lif_n3", svm={"name": "llm-lab"}, ip={"address": "127.0.0.3", "netmask": "8"},
                      location={"home_port": {"name": "e0d", "node": {"name": "cluster1-02"}}},
                      service_policy={"name": "default-data-files"})
    lif.post()
    lif.get(fields="location,ip,services,state")
    assert lif.location.home_node.name == "cluster1-02" and lif.location.node.name == "cluster1-02"
    assert lif.ip.netmask == "8" and "data_nfs" in lif.services and lif.state == "up"
    lif.enabled = False
    lif.patch()
    assert IpInterface.find(name="lif_n3", fields="state").state == "down"
    lif.delete()
    with pytest.raises(NetAppRestError):
        IpInterface(uuid=lif.uuid).get()


def test_rule_insert_and_reindex(ontap, raw):
    policy = ExportPolicy(name="p", svm={"name": "llm-lab"})
    policy.post()
    for match in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        ExportRule(policy.id, clients=[{"match": match}], ro_rule=["sys"], rw_rule=["none"]).post()
    ExportRule(policy.id, index=1, clients=[{"match": "10.0.0.9"}], ro_rule=["any"], rw_rule=["any"]).post()
    order = [r.clients[0].match for r in ExportRule.get_collection(policy.id, fields="clients")]
    assert order == ["10.0.0.9", "10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert raw("PATCH", f"/api/protocols/nfs/export-policies/{policy.id}/rules/4?new_index=1",
               json={}).status_code == 200
    order = [r.clients[0].match for r in ExportRule.get_collection(policy.id, fields="clients")]
    assert order == ["10.0.0.3", "10.0.0.9", "10.0.0.1", "10.0.0.2"]
    policy.name = "renamed"
    policy.patch()
    assert ExportPolicy.find(name="renamed").id == policy.id


def test_volume_resize_rename_and_offline(ontap, sim):
    volume = Volume(name="v1", svm={"name": "llm-lab"}, size="1GB", nas={"path": "/v1"})
    volume.post(poll=True)
    volume.get()
    volume.size = 2 << 30
    volume.comment = "bigger"
    volume.patch(poll=True)
    again = Volume.find(name="v1", fields="size,comment")
    assert (again.size, again.comment) == (2 << 30, "bigger")
    volume.name = "v2"
    volume.patch(poll=True)
    assert (sim.data_dir / "llm-lab" / "v2").is_dir() and not (sim.data_dir / "llm-lab" / "v1").exists()
    volume.nas = {"path": ""}
    volume.state = "offline"
    volume.patch(poll=True)
    assert Volume.find(name="v2", fields="state,nas").state == "offline"
