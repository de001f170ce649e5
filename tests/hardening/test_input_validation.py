"""Hostile input validated with real types, before anything is touched: export clients as addresses, networks
and names (never everyone unless asked); sizes with upper bounds; YAML with an alias budget; unknown keys
named. Plus the places labctl writes for itself: the state dir it is given, the fallback error log, and the
environment it hands Ansible."""

from __future__ import annotations

import pytest

from tests.hardening.util import clean_output

EVERYONE = [
    ["0.0.0.0/1", "128.0.0.0/1"],
    ["0.0.0.0/00"],
    ["0.0.0.0/0.0.0.0"],
    [" 0.0.0.0/0"],
    ["::/1", "8000::/1"],
    ["::ffff:0:0/96"],
    ["10.0.0.11", "0.0.0.0"],
]
NOT_CLIENTS = [["*"], ["127.0.0.11; rm -rf /"], ["0/0"], ["10.0.0.11\n0.0.0.0/0"], ["$(reboot)"]]


@pytest.mark.parametrize("clients", EVERYONE + NOT_CLIENTS, ids=repr)
def test_export_clients_covering_everyone_or_not_clients_are_refused(lab, clients):
    lab.configure(labctl_export_clients=clients)
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 2, out + err
    assert "all.yml: labctl_export_clients" in err, err
    clean_output(out, err)
    assert lab.mutations() == []  # refused before any change on the cluster


def test_export_clients_are_sent_in_canonical_form(lab):
    lab.configure(labctl_export_clients=["10.0.0.0/255.255.255.0", "10.0.1.7", "gpu9.example.com"])
    assert lab.run("provision", "--only", "storage")[0] == 0
    (policy,) = [p for p in lab.sim.state()["export_policies"].values() if p["name"] == "labctl_fg_llm"]
    assert [sorted(c["match"] for c in r["clients"]) for r in policy["rules"]] == [
        ["10.0.0.0/24", "10.0.1.7", "gpu9.example.com"]
    ]
