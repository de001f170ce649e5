"""The netapp.ontap Ansible modules (via ansible-runner) against the simulator, TLS verified against its CA.

The modules only take a boolean `validate_certs` (their `cert_filepath` is a client certificate), so the CA
reaches `requests` through REQUESTS_CA_BUNDLE in the runner's environment.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import ansible_runner
import pytest
import yaml

from tests.sim.util import Raw

pytestmark = pytest.mark.slow

LOGIN = {"hostname": "127.0.0.1", "http_port": "{{ ontap_port }}", "username": "{{ ontap_user }}",
         "password": "{{ lookup('env', 'ONTAP_PASSWORD') }}", "https": True, "validate_certs": True,
         "use_rest": "always"}
SVM = {"vserver": "llm-lab"}
APPLY = [
    {"name": "NFS v4.1 + pNFS", "netapp.ontap.na_ontap_nfs": {
        **SVM, "nfsv41": "enabled", "nfsv41_pnfs": "enabled", "tcp_max_xfer_size": 1048576,
        "service_state": "started"}},
    {"name": "export policy", "netapp.ontap.na_ontap_export_policy": {**SVM, "name": "llm_policy"}},
    {"name": "export rule", "netapp.ontap.na_ontap_export_policy_rule": {
        **SVM, "name": "llm_policy", "client_match": ["127.0.0.0/8"], "ro_rule": ["sys"], "rw_rule": ["sys"],
        "super_user_security": ["sys"], "protocol": ["nfs"]}},
    {"name": "FlexGroup", "netapp.ontap.na_ontap_volume": {
        **SVM, "name": "fg_llm", "aggr_list": ["aggr1", "aggr2"], "aggr_list_multiplier": 8, "size": 10,
        "size_unit": "tb", "junction_path": "/fg_llm", "export_policy": "llm_policy",
        "space_guarantee": "none", "volume_security_style": "unix"}},
]
DELETE = [
    {"name": "FlexGroup", "netapp.ontap.na_ontap_volume": {**SVM, "name": "fg_llm", "state": "absent"}},
    {"name": "export rule", "netapp.ontap.na_ontap_export_policy_rule": {
        **SVM, "name": "llm_policy", "rule_index": 1, "state": "absent"}},
    {"name": "export policy", "netapp.ontap.na_ontap_export_policy": {
        **SVM, "name": "llm_policy", "state": "absent"}},
    {"name": "NFS back to the seed", "netapp.ontap.na_ontap_nfs": {
        **SVM, "nfsv41": "disabled", "nfsv41_pnfs": "disabled", "tcp_max_xfer_size": 65536}},
]


def play(tasks: list[dict]) -> list[dict]:
    return [{"hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/netapp.ontap.netapp_ontap": LOGIN}, "tasks": tasks}]


def run(sim, tmp: Path, name: str, tasks: list[dict]) -> dict[str, int]:
    """Run one playbook; returns ansible's per-host stats (changed, ok, failures)."""
    project = tmp / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / f"{name}.yml").write_text(yaml.safe_dump(play(tasks), sort_keys=False))
    result = ansible_runner.run(
        private_data_dir=str(tmp), playbook=f"{name}.yml", quiet=True,
        inventory=f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}",
        extravars={"ontap_port": sim.port, "ontap_user": sim.username},
        envvars={"ONTAP_PASSWORD": sim.password, "REQUESTS_CA_BUNDLE": sim.ca_file,
                 "ANSIBLE_PIPELINING": "True", "ANSIBLE_NOCOLOR": "1"})
    failures = [e["event_data"].get("res", {}).get("msg") for e in result.events
                if e.get("event") == "runner_on_failed"]
    assert result.status == "successful", failures
    stats = result.stats or {}
    return {key: sum(stats.get(key, {}).values()) for key in ("changed", "ok", "failures")}


def test_apply_reapply_delete(ontap_sim, tmp_path):
    sim = ontap_sim
    seeded = sim.state()
    assert run(sim, tmp_path / "apply", "apply", APPLY)["changed"] == 4

    raw = Raw(sim)
    service = raw("GET", "/api/protocols/nfs/services?svm.name=llm-lab&fields=protocol,transport").json()
    record = service["records"][0]
    assert record["protocol"]["v41_enabled"] and record["protocol"]["v41_features"]["pnfs_enabled"]
    assert record["transport"]["tcp_max_transfer_size"] == 1048576
    query = "is_constituent=true&flexgroup.name=fg_llm&fields=aggregates,size"
    members = raw("GET", f"/api/storage/volumes?{query}").json()["records"]
    assert len(members) == 16 and {m["size"] for m in members} == {10 * (1 << 40) // 16}
    assert Counter(m["aggregates"][0]["name"] for m in members) == {"aggr1": 8, "aggr2": 8}
    rules = raw("GET", "/api/protocols/nfs/export-policies?name=llm_policy&fields=rules").json()["records"]
    assert [r["clients"] for r in rules[0]["rules"]] == [[{"match": "127.0.0.0/8"}]]

    writes_before = [c for c in sim.requests() if c["method"] != "GET"]
    assert run(sim, tmp_path / "again", "apply", APPLY)["changed"] == 0
    assert [c for c in sim.requests() if c["method"] != "GET"] == writes_before

    assert run(sim, tmp_path / "delete", "delete", DELETE)["changed"] == 4
    assert sim.state() == seeded
    assert not (sim.data_dir / "llm-lab" / "fg_llm").exists()
