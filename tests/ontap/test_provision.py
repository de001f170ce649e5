"""`labctl provision / teardown / status` against the ONTAP simulator, checked through the SDK."""

from __future__ import annotations

import json

from netapp_ontap.resources import ExportPolicy, ExportRule, IpInterface, NfsService, Volume

TIB = 1 << 40


def _policy_rules(name: str) -> list[dict]:
    policies = list(ExportPolicy.get_collection(name=name, fields="id", **{"svm.name": "llm-lab"}))
    assert len(policies) == 1
    return [r.to_dict() for r in ExportRule.get_collection(policies[0].id, fields="*")]


def test_fresh_provision_builds_the_lab_and_verifies_it(lab):
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 0, err
    assert "verified: fg_llm: 16 constituents (aggr1: 8, aggr2: 8)" in out
    with lab.sdk():
        nfs = list(NfsService.get_collection(fields="*", **{"svm.name": "llm-lab"}))[0].to_dict()
        assert nfs["protocol"]["v41_enabled"] is True
        assert nfs["protocol"]["v41_features"]["pnfs_enabled"] is True
        assert nfs["transport"]["tcp_max_transfer_size"] == 1048576
        rules = _policy_rules("labctl_fg_llm")
        assert len(rules) == 1
        assert sorted(c["match"] for c in rules[0]["clients"]) == ["127.0.0.11", "127.0.0.12"]
        assert (
            rules[0]["rw_rule"] == ["sys"]
            and rules[0]["ro_rule"] == ["sys"]
            and rules[0]["superuser"] == ["sys"]
        )
        vols = list(
            Volume.get_collection(
                name="fg_llm", fields="*,nas.path,nas.export_policy.name,comment", **{"svm.name": "llm-lab"}
            )
        )
        assert len(vols) == 1
        vol = vols[0].to_dict()
        assert vol["style"] == "flexgroup" and vol["size"] == 10 * TIB
        assert vol["nas"]["path"] == "/fg_llm" and vol["nas"]["export_policy"]["name"] == "labctl_fg_llm"
        assert "managed by labctl" in vol["comment"]
        parts = [
            p.to_dict()
            for p in Volume.get_collection(
                is_constituent=True, fields="aggregates,size", **{"flexgroup.name": "fg_llm"}
            )
        ]
        assert len(parts) == 16
        assert sorted(p["aggregates"][0]["name"] for p in parts) == ["aggr1"] * 8 + ["aggr2"] * 8
        assert (
            len(list(IpInterface.get_collection(**{"svm.name": "llm-lab"}))) == 2
        )  # the existing LIFs reused
    ledger = json.loads((lab.root / "state" / "ledger.json").read_text())
    assert ledger["version"] == 1 and ledger["meta"]["nfs_server"] == "127.0.0.1"
    assert {e["kind"] for e in ledger["objects"].values()} == {
        "nfs_service",
        "export_policy",
        "export_rule",
        "volume",
    }
    assert ledger["objects"]["nfs_service:llm-lab"]["prior"] == {
        "protocol.v41_enabled": False,
        "protocol.v41_features.pnfs_enabled": False,
        "transport.tcp_max_transfer_size": 65536,
    }
    assert (lab.root / "state" / "ledger.json").stat().st_mode & 0o777 == 0o600


def test_second_provision_makes_no_mutating_call(lab):
    assert lab.run("provision", "--only", "storage")[0] == 0
    mark = lab.mark()
    rc, out, _ = lab.run("provision", "--only", "storage")
    assert rc == 0
    assert lab.mutations(mark) == []
    assert "create" not in out and "modify" not in out


def test_plan_on_a_fresh_cluster_changes_nothing(lab):
    seed = lab.sim.state()
    rc, out, _ = lab.run("provision", "--plan")
    assert rc == 0
    assert lab.mutations() == []
    assert lab.sim.state() == seed
    assert "protocol.v41_enabled: False → True" in out
    assert "transport.tcp_max_transfer_size: 65536 → 1048576" in out
    assert "FlexGroup" in out and "size: - → 10 TiB" in out and "constituents: - → 16" in out
    assert "4 change(s) planned" in out


def test_plan_after_a_config_change_shows_the_diff(lab):
    assert lab.run("provision", "--only", "storage")[0] == 0
    lab.configure(
        labctl_flexgroup_size="12TB",
        labctl_export_clients=["127.0.0.11", "127.0.0.12", "10.1.0.0/24"],
        labctl_nfs_tcp_max_xfer_size=262144,
    )
    mark, before = lab.mark(), lab.sim.state()
    rc, out, _ = lab.run("provision", "--plan", "--only", "storage")
    assert rc == 0
    assert lab.mutations(mark) == [] and lab.sim.state() == before
    assert "size: 10 TiB → 12 TiB" in out
    assert "clients: 127.0.0.11,127.0.0.12 → 10.1.0.0/24,127.0.0.11,127.0.0.12" in out
    assert "transport.tcp_max_transfer_size: 1048576 → 262144" in out
    assert "3 change(s) planned" in out
    # applying it converges, and teardown still restores the value seen before labctl's first change
    assert lab.run("provision", "--only", "storage")[0] == 0
    mark = lab.mark()
    assert lab.run("provision", "--only", "storage")[0] == 0 and lab.mutations(mark) == []
    assert lab.run("teardown", "--yes", "--only", "storage")[0] == 0
    with lab.sdk():
        nfs = list(NfsService.get_collection(fields="*", **{"svm.name": "llm-lab"}))[0].to_dict()
    assert nfs["transport"]["tcp_max_transfer_size"] == 65536


def test_teardown_returns_the_seeded_state_and_is_idempotent(lab):
    seed = lab.sim.state()
    assert lab.run("provision", "--only", "storage")[0] == 0
    rc, out, err = lab.run("teardown", "--yes", "--only", "storage")
    assert rc == 0, out + err
    assert lab.sim.state() == seed
    assert "leftovers: none" in out
    assert "recovery queue" in out
    mark = lab.mark()
    rc, out, _ = lab.run("teardown", "--yes", "--only", "storage")
    assert rc == 0 and lab.mutations(mark) == []
    assert "leftovers: none" in out


def test_teardown_unmounts_before_deleting(lab):
    assert lab.run("provision", "--only", "storage")[0] == 0
    mark = lab.mark()
    assert lab.run("teardown", "--yes", "--only", "storage")[0] == 0
    calls = lab.mutations(mark)
    volume_calls = [m for m, p in calls if p.startswith("/api/storage/volumes/")]
    assert volume_calls == ["PATCH", "DELETE"]
    assert [m for m, p in calls if "export-policies" in p] == ["DELETE"]  # the rule goes with the policy
    assert calls[-1][0] == "PATCH" and "nfs/services" in calls[-1][1]  # NFS restored last


def test_teardown_without_yes_and_no_terminal_refuses(lab):
    assert lab.run("provision", "--only", "storage")[0] == 0
    mark = lab.mark()
    rc, _, err = lab.run("teardown")
    assert rc == 2 and "--yes" in err
    assert lab.mutations(mark) == []


def test_a_foreign_volume_of_the_same_name_is_refused(lab):
    with lab.sdk():
        Volume.from_dict(
            {"name": "fg_llm", "svm": {"name": "llm-lab"}, "aggregates": [{"name": "aggr1"}], "size": 1 << 30}
        ).post(poll=True)
    mark = lab.mark()
    rc, _, err = lab.run("provision", "--only", "storage")
    assert rc == 1
    assert "volume fg_llm exists in SVM llm-lab" in err and "labctl did not create it" in err
    assert "Traceback" not in err
    assert not [c for c in lab.mutations(mark) if "volumes" in c[1]]
    mark = lab.mark()
    rc, out, err = lab.run("teardown", "--yes", "--only", "storage")
    assert rc == 0, out + err  # not labctl's: reported and left alone, not a leftover
    assert "not created by labctl" in out and "fg_llm" in out
    assert not [c for c in lab.mutations(mark) if "volumes" in c[1]]
    with lab.sdk():
        assert len(list(Volume.get_collection(name="fg_llm", **{"svm.name": "llm-lab"}))) == 1


def test_configured_data_lifs_are_created_and_removed(lab):
    seed = lab.sim.state()
    lifs = [
        {"name": "labctl_n1", "node": "cluster1-01", "address": "127.0.0.21"},
        {"name": "labctl_n2", "node": "cluster1-02", "address": "127.0.0.22"},
    ]
    lab.configure(labctl_data_lifs=lifs)
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 0, err
    assert "hosts mount 127.0.0.21:/fg_llm" in out
    with lab.sdk():
        names = {i.name for i in IpInterface.get_collection(**{"svm.name": "llm-lab"})}
    assert {"labctl_n1", "labctl_n2", "lif_n1", "lif_n2"} <= names
    mark = lab.mark()
    assert lab.run("provision", "--only", "storage")[0] == 0 and lab.mutations(mark) == []
    assert lab.run("teardown", "--yes", "--only", "storage")[0] == 0
    assert lab.sim.state() == seed


def test_status_reports_ownership_and_drift(lab):
    assert lab.run("provision", "--only", "storage")[0] == 0
    with lab.sdk():
        svc = list(NfsService.get_collection(**{"svm.name": "llm-lab"}))[0]
        svc.transport = {"tcp_max_transfer_size": 65536}
        svc.patch()
    rc, out, err = lab.run("status", "--only", "storage", "--output", "json")
    assert rc == 0, err
    report = json.loads(out)
    by_kind = {o["kind"]: o for o in report["objects"]}
    assert by_kind["volume"]["status"] == "ok" and by_kind["volume"]["created"] is True
    assert by_kind["nfs_service"]["status"] == "drift"
    assert by_kind["nfs_service"]["drift"]["transport.tcp_max_transfer_size"] == {
        "recorded": 1048576,
        "now": 65536,
    }
    assert [p["kind"] for p in report["pending"]] == ["NFS service"]
    assert report["cluster"]["svm"] == "llm-lab"
    rc, out, _ = lab.run("status", "--only", "storage")
    assert rc == 0 and "drift" in out


def test_an_existing_policy_gets_only_labctls_rule_and_keeps_the_rest(lab):
    seed = lab.sim.state()
    lab.configure(labctl_export_policy="default")
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 0, err
    with lab.sdk():
        assert len(_policy_rules("default")) == 1
    mark = lab.mark()
    assert lab.run("provision", "--only", "storage")[0] == 0 and lab.mutations(mark) == []
    rc, out, _ = lab.run("teardown", "--yes", "--only", "storage")
    assert rc == 0
    assert lab.sim.state() == seed  # the rule went, the policy stayed


def test_an_svm_without_an_nfs_service_gets_one_and_loses_it_again(lab):
    with lab.sdk():
        svc = list(NfsService.get_collection(**{"svm.name": "llm-lab"}))[0]
        NfsService(svm={"uuid": svc.svm.uuid}).delete()
    before = lab.sim.state()
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 0, err
    with lab.sdk():
        nfs = list(NfsService.get_collection(fields="*", **{"svm.name": "llm-lab"}))[0].to_dict()
    assert nfs["protocol"]["v41_enabled"] and nfs["protocol"]["v41_features"]["pnfs_enabled"]
    assert nfs["transport"]["tcp_max_transfer_size"] == 1048576
    mark = lab.mark()
    assert lab.run("provision", "--only", "storage")[0] == 0 and lab.mutations(mark) == []
    assert lab.run("teardown", "--yes", "--only", "storage")[0] == 0
    assert lab.sim.state() == before
