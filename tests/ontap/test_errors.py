"""Bad credentials, TLS trust, reachability, unsupported clusters: clear errors, right exit codes, no
traceback, no secret in any output."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from labctl.sim import OntapSimulator
from tests.ontap.conftest import write_inventory


def _no_traceback(out: str, err: str) -> None:
    assert "Traceback" not in out + err


def test_bad_credentials_are_a_config_error_naming_the_password_source(lab):
    (lab.root / "secrets" / "ontap_password").write_text("not-the-password\n")
    rc, out, err = lab.run("-vv", "provision", "--only", "storage")
    assert rc == 2
    assert "rejected the credentials of user 'admin'" in err
    assert "labctl_ontap_password_file" in err
    _no_traceback(out, err)
    assert lab.mutations() == []
    assert "not-the-password" not in out + err
    assert "not-the-password" not in (lab.root / "state" / "labctl.log").read_text()


def test_an_untrusted_certificate_is_a_config_error(lab):
    other = lab.root / "other-ca.pem"
    other.write_text(_self_signed_pem())
    lab.configure(labctl_ontap_ca_file=str(other))
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 2
    assert "TLS verification" in err and "labctl_ontap_ca_file" in err
    _no_traceback(out, err)


def _self_signed_pem() -> str:
    """A CA that did not sign the simulator's certificate."""
    from labctl.sim.tls import make_certificates

    ca, _, _ = make_certificates(Path(tempfile.mkdtemp()), "127.0.0.1")
    return Path(ca).read_text()


def test_an_unreachable_cluster_is_an_operational_error(lab):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lab.configure(labctl_ontap_port=port, labctl_ontap_retries=1)
    rc, out, err = lab.run("status", "--only", "storage")
    assert rc == 1
    assert f"cannot reach ONTAP at 127.0.0.1:{port}" in err and "labctl_ontap_port" in err
    _no_traceback(out, err)


def test_a_missing_svm_fails_closed(lab):
    lab.configure(labctl_svm="no-such-svm")
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 1
    assert "SVM 'no-such-svm' does not exist" in err and "labctl_svm" in err
    assert lab.mutations() == []


@pytest.mark.parametrize(
    "cluster, message",
    [
        ({"version": "9.10.1", "version_full": "NetApp Release 9.10.1"}, "ONTAP 9.10.1 is not supported"),
    ],
)
def test_an_unsupported_cluster_fails_closed(tmp_path, monkeypatch, capsys, cluster, message):
    from labctl.cli import main

    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    with OntapSimulator(
        password="sim-Passw0rd", seed={**_seed(), "cluster": {**_seed()["cluster"], **cluster}}
    ) as sim:
        inventory = write_inventory(tmp_path, sim)
        rc = main(["-i", str(inventory), "provision", "--only", "storage"])
        out, err = capsys.readouterr()
        assert rc == 1 and message in err
        assert not [r for r in sim.requests() if r["method"] != "GET"]
    _no_traceback(out, err)


def _seed() -> dict:
    from labctl.sim.seed import load_seed

    return load_seed()


def test_config_errors_exit_2_before_any_request(lab):
    lab.configure(labctl_ontap_password_file=None, labctl_ontap_password="hunter22")
    rc, out, err = lab.run("provision")
    assert rc == 2
    assert "all.yml: labctl_ontap_password: a plain-text password in the inventory is refused" in err
    assert "fix:" in err and "ansible-vault" in err
    lab.configure(labctl_flexgroup_size="lots")
    rc, out, err = lab.run("provision", "--plan")
    assert rc == 2 and "labctl_flexgroup_size" in err and "'lots' is not a size" in err
    _no_traceback(out, err)
    assert lab.sim.requests() == []


def test_a_missing_inventory_is_a_usage_error(lab, tmp_path):
    from labctl.cli import main

    rc = main(["-i", str(tmp_path / "nope"), "status", "--only", "storage"])
    err = lab.capsys.readouterr().err
    assert rc == 2 and "inventory directory" in err and "does not exist" in err


@pytest.mark.parametrize(
    "field, message",
    [("san_optimized", "SAN-optimized (ASA personality)"), ("disaggregated", "AFX personality")],
)
def test_unsupported_personalities_fail_closed(lab, field, message):
    with lab.sim.backend.lock:
        lab.sim.backend.state["cluster"][field] = True  # reset to the seed after the test
    rc, out, err = lab.run("provision", "--only", "storage")
    assert rc == 1 and message in err
    assert lab.mutations() == []
    _no_traceback(out, err)


def test_a_node_without_a_data_lif_is_named(lab):
    from netapp_ontap.resources import IpInterface

    with lab.sdk():
        lif = list(IpInterface.get_collection(name="lif_n2", **{"svm.name": "llm-lab"}))[0]
        IpInterface(uuid=lif.uuid).delete()
    rc, _, err = lab.run("provision", "--only", "storage")
    assert rc == 1
    assert "node(s) cluster1-02 have no data LIF in SVM llm-lab" in err and "labctl_data_lifs" in err


def test_a_layout_that_no_longer_matches_is_an_error(lab):
    assert lab.run("provision", "--only", "storage")[0] == 0
    lab.configure(labctl_flexgroup_constituents_per_aggregate=4)
    mark = lab.mark()
    rc, out, _ = lab.run("provision", "--only", "storage", "--plan")
    assert rc == 0 and "refused" in out and "layout: aggr1×8, aggr2×8 → aggr1×4, aggr2×4" in out
    rc, _, err = lab.run("provision", "--only", "storage")
    assert rc == 1
    assert "does not match the configuration" in err and "labctl teardown" in err
    assert lab.mutations(mark) == []


def test_the_console_script_reports_bad_credentials_cleanly(lab):
    (lab.root / "secrets" / "ontap_password").write_text("wrong-password\n")
    env = {**os.environ, "LABCTL_STATE_DIR": str(lab.root / "state")}
    out = subprocess.run(
        [sys.executable, "-m", "labctl", "-i", str(lab.inventory), "status", "--only", "storage"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 2
    assert "rejected the credentials" in out.stderr
    _no_traceback(out.stdout, out.stderr)
    assert "wrong-password" not in out.stdout + out.stderr
