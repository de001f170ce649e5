"""Issue 18, second part: LIF migrate, auto-provisioned FlexGroups, job failures within `return_timeout`,
FlexGroup size split, export rule moves and the `efficiency.volume_path` filter (raw HTTPS and the SDK)."""

from __future__ import annotations

from netapp_ontap.resources import Cluster, ExportPolicy, ExportRule, IpInterface, Qtree, Snapshot, Volume

from labctl.sim.schema import schema_for
from tests.sim.test_schema import mismatches
from tests.sim.util import error_of

VOLUMES = "/api/storage/volumes"


def test_lif_migrate_moves_the_current_location_and_keeps_home(ontap, raw):
    lif = IpInterface.find(name="lif_n1", fields="location")
    home = (lif.location.home_node.name, lif.location.home_port.name)
    other = "cluster1-02" if home[0] == "cluster1-01" else "cluster1-01"
    answer = raw("PATCH", f"/api/network/ip/interfaces/{lif.uuid}",
                 json={"location": {"node": {"name": other},
                                    "port": {"name": "e0c", "node": {"name": other}}}})
    assert answer.status_code == 200
    lif.get(fields="location")
    assert (lif.location.node.name, lif.location.port.name) == (other, "e0c")
    assert (lif.location.home_node.name, lif.location.home_port.name) == home
    assert lif.location.is_home is False
    lif.location = {"node": {"name": home[0]}}  # back home through the SDK, port kept when the node has it
    lif.patch()
    lif.get(fields="location")
    assert (lif.location.node.name, lif.location.port.name) == (home[0], "e0c")
    bad = raw("PATCH", f"/api/network/ip/interfaces/{lif.uuid}",
              json={"location": {"node": {"name": "nope"}}})
    assert error_of(bad)[:2] == (400, "393271")


def test_flexgroup_without_aggregates_is_auto_provisioned(raw):
    body = {"name": "fg_auto", "svm": {"name": "llm-lab"}, "style": "flexgroup",
            "constituents_per_aggregate": 1, "size": 10 << 30}
    assert raw("POST", f"{VOLUMES}?return_timeout=30", json=body).status_code == 201
    query = f"{VOLUMES}?name=fg_auto&fields=style,constituent_count,aggregates"
    record = raw("GET", query).json()["records"][0]
    assert record["style"] == "flexgroup" and record["constituent_count"] == 2
    assert sorted(a["name"] for a in record["aggregates"]) == ["aggr1", "aggr2"]


def test_job_failing_within_return_timeout_answers_its_error(raw):
    raw("POST", "/_sim/faults", json={"action": "job_failure", "method": "POST", "path": VOLUMES,
                                      "code": "917536", "message": "aggregate offline"})
    body = {"name": "v_fail", "svm": {"name": "llm-lab"}, "size": 1 << 30}
    answer = raw("POST", f"{VOLUMES}?return_timeout=30", json=body)
    assert error_of(answer) == (400, "917536", "aggregate offline")
    job = raw("GET", answer.json()["job"]["_links"]["self"]["href"]).json()
    assert job["state"] == "failure"
    assert raw("POST", VOLUMES, json=body).status_code == 202  # no return_timeout: 202 as before


def test_flexgroup_reports_the_size_asked_so_reruns_compare_equal(ontap, raw):
    size = (10 << 30) + 4096 * 5 + 100  # a multiple of neither 4 KiB nor the constituent count
    body = {"name": "fg_odd", "svm": {"name": "llm-lab"}, "constituents_per_aggregate": 3, "size": size,
            "aggregates": [{"name": "aggr1"}, {"name": "aggr2"}]}
    assert raw("POST", f"{VOLUMES}?return_timeout=30", json=body).status_code == 201
    volume = Volume.find(name="fg_odd", fields="size,space.size,constituents")
    assert volume.size == size and volume.space.size == size
    assert sum(c.space.size for c in volume.constituents) == size
    volume.size = size + 4096 * 5 + 1
    volume.patch(poll=True)
    assert Volume.find(name="fg_odd", fields="space.size").space.size == size + 4096 * 5 + 1


def test_export_rule_move_and_delete_keep_indexes(ontap, raw):
    policy = ExportPolicy(name="moves", svm={"name": "llm-lab"})
    policy.post()
    for match in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        ExportRule(policy.id, clients=[{"match": match}], ro_rule=["sys"], rw_rule=["sys"]).post()
    rules = f"/api/protocols/nfs/export-policies/{policy.id}/rules"
    assert raw("PATCH", f"{rules}/3?new_index=10", json={}).status_code == 200
    assert raw("DELETE", f"{rules}/1").status_code == 200
    found = {r.index: r.clients[0].match for r in ExportRule.get_collection(policy.id, fields="clients")}
    assert found == {2: "10.0.0.2", 10: "10.0.0.3"}
    assert error_of(raw("PATCH", f"{rules}/2?new_index=0", json={}))[:2] == (400, "262197")


def test_efficiency_volume_path_filter_and_state(ontap, raw):
    body = {"name": "v_eff", "svm": {"name": "llm-lab"}, "size": 1 << 30}
    assert raw("POST", f"{VOLUMES}?return_timeout=30", json=body).status_code == 201
    query = f"{VOLUMES}?svm.name=llm-lab&efficiency.volume_path=/vol/v_eff&fields=uuid,efficiency"
    records = raw("GET", query).json()["records"]
    assert [r["name"] for r in records] == ["v_eff"]
    assert records[0]["efficiency"]["state"] == "enabled"
    assert raw("GET", f"{VOLUMES}?efficiency.volume_path=/vol/nope").json()["num_records"] == 0
    volume = Volume.find(name="v_eff")
    volume.efficiency = {"dedupe": "none", "compression": "none"}
    volume.patch(poll=True)
    assert Volume.find(name="v_eff", fields="efficiency.state").efficiency.state == "disabled"


def _mounted_volume(raw, name: str) -> str:
    body = {"name": name, "svm": {"name": "llm-lab"}, "size": 1 << 30, "nas": {"path": f"/{name}"}}
    assert raw("POST", f"{VOLUMES}?return_timeout=30", json=body).status_code == 201
    return raw("GET", f"{VOLUMES}?name={name}").json()["records"][0]["uuid"]


def test_snapshot_create_list_rename_restore_delete(ontap, raw, sim):
    vol_uuid = _mounted_volume(raw, "v_snap")
    data = sim.data_dir / "llm-lab" / "v_snap" / "weights.bin"
    data.write_bytes(b"epoch-1")
    snapshot = Snapshot(vol_uuid, name="before", comment="first")
    snapshot.post(poll=True)
    assert [s.name for s in Snapshot.get_collection(vol_uuid)] == ["before"]
    listed = raw("GET", f"{VOLUMES}/{vol_uuid}/snapshots?fields=**").json()["records"]
    schema = schema_for("/api/storage/volumes/{volume_uuid}/snapshots")
    assert listed and mismatches(schema, listed[0]) == []
    assert Volume.find(name="v_snap", fields="snapshot_count").snapshot_count == 1
    data.write_bytes(b"epoch-2 overwritten")
    snapshot.name = "epoch1"
    snapshot.patch(poll=True)
    assert Snapshot.find(vol_uuid, name="epoch1", fields="comment").comment == "first"
    Volume(uuid=vol_uuid).patch(poll=True, **{"restore_to.snapshot.name": "epoch1"})
    assert data.read_bytes() == b"epoch-1"
    missing = raw("PATCH", f"{VOLUMES}/{vol_uuid}?restore_to.snapshot.name=nope", json={})
    assert error_of(missing)[:2] == (404, "4")
    duplicate = raw("POST", f"{VOLUMES}/{vol_uuid}/snapshots", json={"name": "epoch1"})
    assert error_of(duplicate)[:2] == (409, "1638407")
    snapshot.delete(poll=True)
    assert list(Snapshot.get_collection(vol_uuid)) == []
    assert not (sim.data_dir / ".snapshots" / vol_uuid / snapshot.uuid).exists()


def test_qtrees_by_volume_name_and_quoted_name(ontap, raw, sim):
    _mounted_volume(raw, "v_qt")
    body = {"name": "q1", "volume": {"name": "v_qt"}, "svm": {"name": "llm-lab"}, "unix_permissions": "750"}
    assert raw("POST", "/api/storage/qtrees?return_timeout=10", json=body).status_code == 201
    assert (sim.data_dir / "llm-lab" / "v_qt" / "q1").is_dir()
    query = '/api/storage/qtrees?svm.name=llm-lab&volume=v_qt&name="q1"&fields=unix_permissions,volume,path'
    records = raw("GET", query).json()["records"]
    assert len(records) == 1 and records[0]["unix_permissions"] == 750 and records[0]["path"] == "/v_qt/q1"
    assert raw("GET", '/api/storage/qtrees?name="q*"').json()["num_records"] == 0
    qtree = Qtree.find(name="q1", volume="v_qt")
    qtree.security_style = "mixed"
    qtree.patch(poll=True)
    assert Qtree.find(name="q1", fields="security_style").security_style == "mixed"
    qtree.delete(poll=True)
    assert Qtree.find(name="q1") is None and not (sim.data_dir / "llm-lab" / "v_qt" / "q1").exists()


def test_cluster_patch_location_and_contact(ontap, raw):
    cluster = Cluster()
    cluster.location = "lab rack 4"
    cluster.contact = "storage-team"
    cluster.patch(poll=True)
    cluster.get(fields="location,contact,name")
    assert (cluster.location, cluster.contact, cluster.name) == ("lab rack 4", "storage-team", "cluster1")
    assert raw("PATCH", "/api/cluster?return_timeout=30", json={"contact": "x"}).status_code == 200
    assert error_of(raw("PATCH", "/api/cluster", json={"timezone": {"name": "UTC"}}))[:2] == (400, "262179")
