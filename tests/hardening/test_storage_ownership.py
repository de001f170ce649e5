"""Provision and teardown touch only what labctl owns on the cluster (issue 16, items 3, 7, 13, 16, 17):
the export rule is known by its content, never by its index alone; ONTAP names carry no query operators; a
provision that must fail fails before it changes anything; a create whose answer a killed run never got is
found again even when it lands late; a same-named volume labctl did not make is reported, not a failure."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import threading
from typing import Any

import pytest
from netapp_ontap.resources import ExportPolicy, ExportRule, Volume

from labctl.config.lab import load_lab_config
from labctl.errors import ConfigError
from labctl.sim.app import DropConnection
from tests.hardening.util import clean_output, ledger_of

TIMEOUT = 60.0
ADMIN_RULE = {
    "clients": [{"match": "10.9.9.9"}], "ro_rule": ["sys"], "rw_rule": ["never"], "superuser": ["none"]
}
RULE_KEY = "export_rule:llm-lab/shared"


def _rules(lab: Any, policy: str) -> dict[int, list[str]]:
    """The policy's rules: index → client matches."""
    with lab.sdk():
        pid = list(ExportPolicy.get_collection(name=policy, **{"svm.name": "llm-lab"}))[0].id
        found = ExportRule.get_collection(pid, fields="*")
        return {int(r.index): [c.match for c in r.clients] for r in found}


def _policy_id(lab: Any, policy: str) -> int:
    with lab.sdk():
        return int(list(ExportPolicy.get_collection(name=policy, **{"svm.name": "llm-lab"}))[0].id)


@pytest.fixture
def shared_policy(lab):
    """An admin's policy `shared` with their rule 1; labctl is configured to add its rule to it."""
    with lab.sdk():
        ExportPolicy.from_dict({"name": "shared", "svm": {"name": "llm-lab"}}).post()
        ExportRule(_policy_id(lab, "shared"), **ADMIN_RULE).post()
    lab.configure(labctl_export_policy="shared")
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 0, out + err
    assert _rules(lab, "shared") == {1: ["10.9.9.9"], 2: ["127.0.0.11", "127.0.0.12"]}
    return lab


def _admin_replaces_rule_2(lab: Any) -> None:
    """The admin deletes labctl's rule 2 and adds their own, which ONTAP also numbers 2."""
    pid = _policy_id(lab, "shared")
    with lab.sdk():
        ExportRule(pid, index=2).delete()
        ExportRule(pid, clients=[{"match": "10.8.8.8"}], ro_rule=["sys"], rw_rule=["sys"],
                   superuser=["none"]).post()
    assert _rules(lab, "shared") == {1: ["10.9.9.9"], 2: ["10.8.8.8"]}


def test_status_calls_a_rule_at_labctls_old_index_foreign_and_teardown_leaves_it(shared_policy):
    lab = shared_policy
    _admin_replaces_rule_2(lab)
    rc, out, err = lab.run("status", "--only", "storage", "--output", "json")
    assert rc == 0, err
    rule = next(o for o in json.loads(out)["objects"] if o["kind"] == "export_rule")
    assert rule["status"] == "foreign" and rule["drift"] == {}, rule
    mark = lab.mark()
    rc, out, err = lab.run("teardown", "--yes", "--only", "storage")
    assert rc == 0, out + err
    assert "rule 2 is not labctl's" in out
    assert not [c for c in lab.mutations(mark) if "/rules" in c[1]]
    assert _rules(lab, "shared") == {1: ["10.9.9.9"], 2: ["10.8.8.8"]}


def test_provision_adds_its_own_rule_instead_of_rewriting_the_one_at_its_old_index(shared_policy):
    lab = shared_policy
    _admin_replaces_rule_2(lab)
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 0, out + err
    assert _rules(lab, "shared") == {1: ["10.9.9.9"], 2: ["10.8.8.8"], 3: ["127.0.0.11", "127.0.0.12"]}
    assert ledger_of(lab.root / "state")["objects"][RULE_KEY]["index"] == 3
    rc, out, err = lab.run("teardown", "--yes", "--only", "storage")
    assert rc == 0, out + err
    assert _rules(lab, "shared") == {1: ["10.9.9.9"], 2: ["10.8.8.8"]}


def test_a_changed_client_list_modifies_labctls_own_rule_found_by_content(shared_policy):
    lab = shared_policy
    lab.configure(labctl_export_policy="shared", labctl_export_clients=["127.0.0.11"])
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 0, out + err
    assert _rules(lab, "shared") == {1: ["10.9.9.9"], 2: ["127.0.0.11"]}
    assert lab.run("teardown", "--yes", "--only", "storage")[0] == 0
    assert _rules(lab, "shared") == {1: ["10.9.9.9"]}


@pytest.mark.parametrize(
    "key, value",
    [
        ("labctl_export_policy", "def*"),
        ("labctl_export_policy", "a|default"),
        ("labctl_export_policy", "!labctl"),
        ("labctl_svm", "llm-lab*"),
        ("labctl_svm", "<z"),
        ("labctl_export_policy", "a..z"),
        ("labctl_flexgroup_aggregates", ["aggr*"]),
        ("labctl_flexgroup_junction", "/fg_*"),
        ("labctl_data_lifs", [{"name": "lif>1", "node": "cluster1-01", "address": "127.0.0.21"}]),
        ("labctl_data_lifs", [{"name": "lif1", "node": "cluster1-*", "address": "127.0.0.21"}]),
    ],
)
def test_ontap_names_with_query_operators_are_refused_at_load(lab, key, value):
    seed = lab.sim.state()
    lab.configure(**{key: value})
    with pytest.raises(ConfigError) as exc:
        load_lab_config(lab.inventory)
    assert key in str(exc.value) and "all.yml" in str(exc.value), exc.value
    mark = lab.mark()
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 2 and key in err, out + err
    clean_output(out, err)
    assert lab.mark() == mark and lab.sim.state() == seed  # refused before connecting


def _foreign_volume(lab: Any) -> None:
    with lab.sdk():
        Volume.from_dict(
            {"name": "fg_llm", "svm": {"name": "llm-lab"}, "aggregates": [{"name": "aggr1"}], "size": 1 << 30}
        ).post(poll=True)


@pytest.mark.parametrize(
    "case, settings, words",
    [
        ("foreign volume", {}, "labctl did not create it"),
        ("missing aggregate", {"labctl_flexgroup_aggregates": ["aggr1", "aggr9"]}, "aggr9 do not exist"),
        ("junction in use", {"labctl_flexgroup_junction": "/"}, "already used by volume llm_lab_root"),
        ("no parent junction", {"labctl_flexgroup_junction": "/no/such"}, "no volume is mounted at"),
        ("300 constituents", {"labctl_flexgroup_constituents_per_aggregate": 150}, "at most 200"),
    ],
)
def test_provision_makes_every_check_before_changing_the_cluster(lab, case, settings, words):
    if case == "foreign volume":
        _foreign_volume(lab)
    seed = lab.sim.state()
    lab.configure(**settings)
    mark = lab.mark()
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 1, (case, out, err)
    assert words in err, (case, err)
    clean_output(out, err)
    assert lab.mutations(mark) == [], case
    assert lab.sim.state() == seed, case


def test_absurd_constituent_counts_are_refused_at_load(lab):
    seed = lab.sim.state()
    both = ["aggr1", "aggr2"]
    lab.configure(labctl_flexgroup_aggregates=both, labctl_flexgroup_constituents_per_aggregate=1000)
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 2 and "labctl_flexgroup_constituents_per_aggregate" in err, out + err
    assert lab.sim.state() == seed
    lab.configure(labctl_flexgroup_aggregates=both, labctl_flexgroup_constituents_per_aggregate=150)
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 2 and "300 constituents" in err, out + err
    assert lab.sim.state() == seed


class LateCreate:
    """Wraps the simulator's `/api` handler: the first call matching (method, glob) is held, unprocessed,
    until a second matching call arrives; then the first takes effect (its answer goes to a dead client)
    and only after it the second is processed. So a killed run's create lands just after the rerun looked
    for the object and just before the rerun's own create."""

    def __init__(self, sim: Any, method: str, path: str) -> None:
        self.original = sim.app._api
        self.method, self.path = method, path
        self.calls = 0
        self.lock = threading.Lock()
        self.first_held = threading.Event()
        self.second_arrived = threading.Event()
        self.first_done = threading.Event()

    def __call__(self, req: Any) -> Any:
        with self.lock:
            hit = req.method == self.method and fnmatch.fnmatchcase(req.path, self.path)
            n = self.calls = self.calls + hit
        if not hit or n > 2:
            return self.original(req)
        if n == 1:
            self.first_held.set()
            if not self.second_arrived.wait(TIMEOUT):
                raise DropConnection()
            try:
                return self.original(req)
            finally:
                self.first_done.set()
        self.second_arrived.set()
        self.first_done.wait(TIMEOUT)
        return self.original(req)


@pytest.mark.parametrize(
    "step", ["/api/protocols/nfs/export-policies", "/api/protocols/nfs/export-policies/*/rules"]
)
def test_a_create_landing_after_a_kill_is_found_again_on_the_first_rerun(lab, monkeypatch, step):
    state_dir = lab.root / "state"
    late = LateCreate(lab.sim, "POST", step)
    monkeypatch.setattr(lab.sim.app, "_api", late)
    env = {**os.environ, "LABCTL_STATE_DIR": str(state_dir), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl", "-i", str(lab.inventory), "provision", "--only", "storage"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        assert late.first_held.wait(TIMEOUT), "labctl never sent the create"
        proc.kill()
        assert proc.wait(TIMEOUT) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    pending = ledger_of(state_dir)["objects"]
    assert any(e["state"] == "intent" for e in pending.values()), pending
    rc, out, err = lab.run("provision", "--only", "storage")
    assert late.first_done.is_set(), "the killed run's create never landed"
    assert rc == 0, out + err
    assert "verified: fg_llm: 16 constituents" in out
    assert all(e["state"] == "done" for e in ledger_of(state_dir)["objects"].values())
    assert _rules(lab, "labctl_fg_llm") == {1: ["127.0.0.11", "127.0.0.12"]}
    monkeypatch.setattr(lab.sim.app, "_api", late.original)
    rc, out, err = lab.run("teardown", "--yes", "--only", "storage")
    assert rc == 0, out + err
    with lab.sdk():
        assert not list(ExportPolicy.get_collection(name="labctl_fg_llm"))


def test_teardown_reports_a_foreign_same_named_volume_once_as_not_ours_and_exits_0(lab):
    _foreign_volume(lab)
    before = lab.sim.state()
    for _ in range(2):
        mark = lab.mark()
        rc, out, err = lab.run("teardown", "--yes", "--only", "storage")
        assert rc == 0, out + err
        assert out.count("not created by labctl") == 1, out
        assert "leftovers: none" in out
        assert lab.mutations(mark) == []
    assert lab.sim.state() == before


def test_teardown_forgets_its_vanished_volume_and_leaves_the_foreign_one_of_that_name(lab):
    assert lab.run("provision", "--only", "storage")[0] == 0
    uuid = ledger_of(lab.root / "state")["objects"]["volume:llm-lab/fg_llm"]["uuid"]
    with lab.sdk():
        vol = Volume(uuid=uuid)
        vol.nas = {"path": ""}
        vol.patch(poll=True)
        vol.delete(poll=True)
    _foreign_volume(lab)
    rc, out, err = lab.run("teardown", "--yes", "--only", "storage")
    assert rc == 0, out + err
    assert "not created by labctl" in out and "leftovers: none" in out
    assert "volume:llm-lab/fg_llm" not in ledger_of(lab.root / "state")["objects"]
    with lab.sdk():
        assert len(list(Volume.get_collection(name="fg_llm", **{"svm.name": "llm-lab"}))) == 1
    rc, out, err = lab.run("teardown", "--yes", "--only", "storage")
    assert rc == 0 and "leftovers: none" in out, out + err


def test_teardown_keeps_labctls_policy_when_someone_added_a_rule_to_it(lab):
    assert lab.run("provision", "--only", "storage")[0] == 0
    with lab.sdk():
        ExportRule(_policy_id(lab, "labctl_fg_llm"), **ADMIN_RULE).post()
    rc, out, err = lab.run("teardown", "--yes", "--only", "storage")
    assert rc == 0, out + err
    assert "holds rules labctl did not add (2): left alone" in out and "leftovers: none" in out
    assert _rules(lab, "labctl_fg_llm") == {2: ["10.9.9.9"]}  # labctl's rule 1 went, the admin's stayed
    assert ledger_of(lab.root / "state")["objects"] == {}
