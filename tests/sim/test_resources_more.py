"""Issue 18, the remainder: snapshot policies, quota rules, FlexClone, volume move, CLI `show` passthrough
and the volume's references (snapshot policy, QoS policy, encryption), through the SDK and raw HTTPS."""

from __future__ import annotations

import pytest
from netapp_ontap.resources import CLI, QuotaRule, Snapshot, SnapshotPolicy, Volume

from tests.sim.test_ansible import SVM as ANSIBLE_SVM
from tests.sim.test_ansible import run
from tests.sim.util import Raw, error_of

VOLUMES = "/api/storage/volumes"
SVM = {"name": "llm-lab"}


def _flexvol(raw, name: str, aggregate: str = "aggr1", path: str | None = None) -> str:
    body = {"name": name, "svm": SVM, "size": 1 << 30, "aggregates": [{"name": aggregate}],
            "guarantee": {"type": "none"}}
    if path:
        body["nas"] = {"path": path}
    assert raw("POST", f"{VOLUMES}?return_timeout=30", json=body).status_code == 201
    return raw("GET", f"{VOLUMES}?name={name}").json()["records"][0]["uuid"]


def test_snapshot_policies_built_in_and_created(ontap, raw):
    names = {p.name for p in SnapshotPolicy.get_collection()}
    assert {"default", "default-1weekly", "none"} <= names
    default = SnapshotPolicy.find(name="default", fields="copies,scope,enabled")
    assert default.scope == "cluster" and default.enabled is True
    assert [(c.schedule.name, c.count, c.prefix) for c in default.copies] == \
        [("hourly", 6, "hourly"), ("daily", 2, "daily"), ("weekly", 2, "weekly")]

    policy = SnapshotPolicy(name="every5", svm=SVM, comment="ckpt",
                            copies=[{"schedule": {"name": "5min"}, "count": "12"}])
    policy.post(hydrate=True)
    assert policy.scope == "svm" and policy.copies[0].prefix == "5min"
    assert policy.copies[0].snapmirror_label == "-" and policy.copies[0].count == 12
    again = raw("POST", "/api/storage/snapshot-policies",
                json={"name": "every5", "svm": SVM, "copies": [{"schedule": {"name": "daily"}, "count": 1}]})
    assert error_of(again)[:2] == (409, "1638411")
    bad = raw("POST", "/api/storage/snapshot-policies",
              json={"name": "p2", "svm": SVM, "copies": [{"schedule": {"name": "yearly"}, "count": 1}]})
    assert error_of(bad)[0] == 400

    schedules = raw("GET", f"/api/storage/snapshot-policies/{policy.uuid}/schedules"
                           "?fields=schedule.name,schedule.uuid,count,prefix,snapmirror_label").json()
    assert [(s["schedule"]["name"], s["count"]) for s in schedules["records"]] == [("5min", 12)]
    assert raw("POST", f"/api/storage/snapshot-policies/{policy.uuid}/schedules",
               json={"schedule.name": "hourly", "count": "3"}).status_code == 201
    policy.get(fields="copies")
    assert [c.schedule.name for c in policy.copies] == ["5min", "hourly"]

    _flexvol(raw, "v_pol")
    uses = raw("PATCH", f"{VOLUMES}/{Volume.find(name='v_pol').uuid}?return_timeout=30",
               json={"snapshot_policy": {"name": "every5"}})
    assert uses.status_code == 200
    assert Volume.find(name="v_pol", fields="snapshot_policy").snapshot_policy.name == "every5"
    assert error_of(raw("DELETE", f"/api/storage/snapshot-policies/{policy.uuid}"))[0] == 400
    assert error_of(raw("DELETE", f"/api/storage/snapshot-policies/{default.uuid}"))[0] == 400


def test_volume_references_are_checked_before_any_job(raw):
    base = {"svm": SVM, "size": 1 << 30, "aggregates": [{"name": "aggr1"}]}
    answer = raw("POST", VOLUMES, json={**base, "name": "v_ref1", "snapshot_policy": {"name": "nope"}})
    assert error_of(answer)[:2] == (400, "917622")
    assert answer.json()["error"]["target"] == "snapshot_policy.name"
    answer = raw("POST", VOLUMES, json={**base, "name": "v_ref2", "qos": {"policy": {"name": "gold"}}})
    assert error_of(answer)[:2] == (400, "8454147")
    answer = raw("POST", VOLUMES, json={**base, "name": "v_ref3", "encryption": {"enabled": "true"}})
    assert error_of(answer)[:2] == (400, "13434898")
    assert raw("GET", f"{VOLUMES}?name=v_ref*").json()["num_records"] == 0
    assert not [j for j in raw("GET", "/api/cluster/jobs").json()["records"]]
    ok = raw("POST", f"{VOLUMES}?return_timeout=30",
             json={**base, "name": "v_ref4", "snapshot_policy": {"name": "none"},
                   "qos": {"policy": {"name": "extreme"}}})
    assert ok.status_code == 201


def test_quota_rules_and_volume_quota_state(ontap, raw):
    vol_uuid = _flexvol(raw, "v_quota", path="/v_quota")
    assert Volume.find(name="v_quota", fields="quota.state").quota.state == "off"
    rule = QuotaRule(svm=SVM, volume={"name": "v_quota"}, type="tree", qtree={"name": "q1"},
                     space={"hard_limit": 10 << 30, "soft_limit": "8GB"}, files={"hard_limit": 1000})
    rule.post(hydrate=True)
    assert rule.space.hard_limit == 10 << 30 and rule.space.soft_limit == 8 << 30
    group = raw("POST", "/api/storage/quota/rules?return_timeout=30&return_records=true",
                json={"svm.name": "llm-lab", "volume.name": "v_quota", "type": "group",
                      "group.name": "train", "space.hard_limit": "1073741824"})
    assert group.status_code == 201 and group.json()["job"]["uuid"]
    assert group.json()["records"][0]["group"] == {"name": "train"}  # na_ontap_quotas reads volume.uuid here
    assert group.json()["records"][0]["volume"]["uuid"] == vol_uuid
    listed = raw("GET", "/api/storage/quota/rules?volume.name=v_quota&type=tree&qtree.name=q1"
                        "&fields=space,files,qtree").json()["records"]
    assert [(r["qtree"]["name"], r["files"]["hard_limit"]) for r in listed] == [("q1", 1000)]
    duplicate = raw("POST", "/api/storage/quota/rules?return_timeout=30",
                    json={"svm": SVM, "volume": {"name": "v_quota"}, "type": "tree", "qtree": {"name": "q1"}})
    assert error_of(duplicate)[0] == 409
    reset = raw("PATCH", f"/api/storage/quota/rules/{rule.uuid}?return_timeout=30",
                json={"space": {"soft_limit": "-"}})  # "-" removes a limit (what na_ontap_quotas sends)
    assert reset.status_code == 200
    rule.get()
    assert "soft_limit" not in rule.space.to_dict() and rule.space.hard_limit == 10 << 30
    assert raw("PATCH", f"{VOLUMES}/{vol_uuid}?return_timeout=30",
               json={"quota": {"enabled": True}}).status_code == 200
    assert Volume.find(name="v_quota", fields="quota.state").quota.state == "on"
    raw("PATCH", f"{VOLUMES}/{vol_uuid}?return_timeout=30", json={"nas": {"path": ""}})
    assert raw("DELETE", f"{VOLUMES}/{vol_uuid}?return_timeout=30").status_code == 200
    assert raw("GET", "/api/storage/quota/rules").json()["num_records"] == 0


def test_flexclone_holds_the_parent_data_at_the_snapshot(ontap, raw, sim):
    parent_uuid = _flexvol(raw, "v_parent", path="/v_parent")
    parent_dir = sim.data_dir / "llm-lab" / "v_parent"
    (parent_dir / "ckpt.bin").write_bytes(b"before")
    Snapshot(parent_uuid, name="s1").post()
    (parent_dir / "ckpt.bin").write_bytes(b"after")
    body = {"name": "v_clone", "svm.name": "llm-lab", "clone.parent_volume.name": "v_parent",
            "clone.is_flexclone": True, "clone.parent_snapshot.name": "s1", "nas.path": "/v_clone"}
    assert raw("POST", f"{VOLUMES}?return_timeout=30&return_records=true", json=body).status_code == 201
    clone = Volume.find(name="v_clone", fields="clone,aggregates,size")
    assert clone.clone.is_flexclone is True and clone.clone.parent_volume.name == "v_parent"
    assert clone.clone.parent_snapshot.name == "s1" and clone.size == 1 << 30
    assert (sim.data_dir / "llm-lab" / "v_clone" / "ckpt.bin").read_bytes() == b"before"
    assert Volume.find(name="v_parent", fields="clone").clone.has_flexclone is True
    raw("PATCH", f"{VOLUMES}/{parent_uuid}?return_timeout=30", json={"nas": {"path": ""}})
    assert error_of(raw("DELETE", f"{VOLUMES}/{parent_uuid}"))[:2] == (400, "524615")
    missing = raw("POST", VOLUMES, json={**body, "name": "v_clone2", "nas.path": "/v_clone2",
                                         "clone.parent_snapshot.name": "nope"})
    assert error_of(missing)[0] == 404
    split = raw("PATCH", f"{VOLUMES}/{clone.uuid}?return_timeout=30",
                json={"clone": {"split_initiated": True}})
    assert split.status_code == 200
    assert Volume.find(name="v_clone", fields="clone").clone.is_flexclone is False
    assert raw("DELETE", f"{VOLUMES}/{parent_uuid}?return_timeout=30").status_code == 200


def test_volume_move_goes_through_states_to_success(ontap, raw):
    vol_uuid = _flexvol(raw, "v_move", aggregate="aggr1")
    answer = raw("PATCH", f"{VOLUMES}/{vol_uuid}?return_timeout=30",
                 json={"movement": {"destination_aggregate": {"name": "aggr2"}}})
    assert answer.status_code == 200
    seen = []
    for _ in range(10):
        record = raw("GET", f"{VOLUMES}/{vol_uuid}?fields=movement,aggregates").json()
        seen.append((record["movement"]["state"], record["movement"]["percent_complete"]))
        if record["movement"]["state"] == "success":
            break
    assert seen == [("replicating", 50), ("cutover", 90), ("success", 100)]
    assert [a["name"] for a in record["aggregates"]] == ["aggr2"]
    query = f"{VOLUMES}?name=v_move&movement.destination_aggregate.name=aggr2&fields=movement.state"
    assert raw("GET", query).json()["records"][0]["movement"]["state"] == "success"
    same = raw("PATCH", f"{VOLUMES}/{vol_uuid}",
               json={"movement": {"destination_aggregate": {"name": "aggr2"}}})
    assert error_of(same)[0] == 400
    unknown = raw("PATCH", f"{VOLUMES}/{vol_uuid}", json={"movement.destination_aggregate.name": "nope"})
    assert error_of(unknown)[:2] == (400, "917508")


def test_cli_volume_show_and_vserver_nfs_show(ontap, raw):
    raw("POST", f"{VOLUMES}?return_timeout=30",
        json={"name": "fg_cli", "svm": SVM, "size": 4 << 30, "constituents_per_aggregate": 2,
              "aggregates": [{"name": "aggr1"}, {"name": "aggr2"}]})
    rows = CLI().execute("volume show", vserver="llm-lab", volume="fg_cli__*", is_constituent="true",
                         fields="aggregate,size,node").http_response.json()
    assert rows["num_records"] == 4
    assert {r["aggregate"] for r in rows["records"]} == {"aggr1", "aggr2"}
    assert set(rows["records"][0]) == {"vserver", "volume", "aggregate", "size", "node", "is_constituent"}
    dashed = raw("GET", "/api/private/cli/volume?volume=fg_cli&fields=junction-path,volume-style-extended")
    assert dashed.json()["records"][0]["volume_style_extended"] == "flexgroup"
    nfs = CLI().execute("vserver nfs show", vserver="llm-lab",
                        fields="v4.1,v4.1-pnfs,tcp-max-xfer-size").http_response.json()["records"][0]
    assert nfs == {"vserver": "llm-lab", "v4_1": "disabled", "v4_1_pnfs": "disabled",
                   "tcp_max_xfer_size": 65536}
    assert error_of(raw("GET", "/api/private/cli/volume?fields=bogus"))[:2] == (400, "262179")


MODULE_TASKS = [
    {"name": "snapshot policy", "netapp.ontap.na_ontap_snapshot_policy": {
        **ANSIBLE_SVM, "name": "ckpt_policy", "schedule": ["hourly", "daily"], "count": [4, 2],
        "enabled": True, "comment": "checkpoints"}},
    {"name": "volume using it", "netapp.ontap.na_ontap_volume": {
        **ANSIBLE_SVM, "name": "v_src", "aggregate_name": "aggr1", "size": 1, "size_unit": "gb",
        "junction_path": "/v_src", "space_guarantee": "none", "snapshot_policy": "ckpt_policy"}},
    {"name": "snapshot", "netapp.ontap.na_ontap_snapshot": {
        **ANSIBLE_SVM, "volume": "v_src", "snapshot": "s1"}},
    {"name": "FlexClone", "netapp.ontap.na_ontap_volume_clone": {
        **ANSIBLE_SVM, "name": "v_cl", "parent_volume": "v_src", "parent_snapshot": "s1",
        "junction_path": "/v_cl"}},
    {"name": "tree quota", "netapp.ontap.na_ontap_quotas": {
        **ANSIBLE_SVM, "volume": "v_src", "type": "tree", "quota_target": "q1", "disk_limit": "1GB",
        "file_limit": "1000", "set_quota_status": True}},
    {"name": "group quota", "netapp.ontap.na_ontap_quotas": {
        **ANSIBLE_SVM, "volume": "v_src", "type": "group", "quota_target": "train", "disk_limit": "2GB"}},
    {"name": "move", "netapp.ontap.na_ontap_volume": {
        **ANSIBLE_SVM, "name": "v_mv", "aggregate_name": "aggr2", "wait_for_completion": True,
        "check_interval": 1}},
]


@pytest.mark.slow
def test_modules_converge_and_rerun_without_change(ontap_sim, tmp_path):
    sim = ontap_sim
    raw = Raw(sim)
    _flexvol(raw, "v_mv", aggregate="aggr1")
    assert run(sim, tmp_path / "first", "more", MODULE_TASKS)["changed"] == len(MODULE_TASKS)
    policy = raw("GET", "/api/storage/snapshot-policies?name=ckpt_policy&fields=copies").json()["records"][0]
    assert [(c["schedule"]["name"], c["count"]) for c in policy["copies"]] == [("hourly", 4), ("daily", 2)]
    clone = raw("GET", f"{VOLUMES}?name=v_cl&fields=clone").json()["records"][0]["clone"]
    assert clone["is_flexclone"] and clone["parent_snapshot"]["name"] == "s1"
    rules = raw("GET", "/api/storage/quota/rules?fields=type,space,files").json()["records"]
    assert sorted((r["type"], r["space"]["hard_limit"]) for r in rules) == [("group", 2 << 30),
                                                                             ("tree", 1 << 30)]
    source = raw("GET", f"{VOLUMES}?name=v_src&fields=quota.state,snapshot_policy").json()["records"][0]
    assert source["quota"]["state"] == "on" and source["snapshot_policy"]["name"] == "ckpt_policy"
    moved = raw("GET", f"{VOLUMES}?name=v_mv&fields=aggregates,movement").json()["records"][0]
    assert moved["aggregates"][0]["name"] == "aggr2" and moved["movement"]["state"] == "success"
    writes_before = [c for c in sim.requests() if c["method"] != "GET"]
    assert run(sim, tmp_path / "second", "more", MODULE_TASKS)["changed"] == 0
    assert [c for c in sim.requests() if c["method"] != "GET"] == writes_before
