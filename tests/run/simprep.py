"""Bring a fresh simulated lab to "provisioned and mounted" for run tests.

`labctl provision --only storage` is used when it succeeds (the hosts phase installs LLM Studio, which
these tests do not need, and takes a minute); otherwise the test makes the same ONTAP objects through the
simulator's REST API and mounts the FlexGroup on each host over SSH (the hosts' mount.nfs shim), so these
tests exercise the run, not provisioning.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from labctl.experiment.hosts import resolve_hosts
from labctl.experiment.remote import Remote

MOUNT_OPTS = "vers=4.1,proto=tcp,rsize=1048576,wsize=1048576,hard,nconnect=16"


def _rest_provision(lab: dict[str, Any]) -> None:
    o = lab["ontap"]
    auth = (o["username"], Path(o["password_file"]).read_text().strip())
    s = requests.Session()
    s.auth, s.verify = auth, o["ca_file"]

    def call(method: str, path: str, **kw):
        r = s.request(method, o["url"] + path, timeout=30, **kw)
        assert r.status_code < 300, (method, path, r.status_code, r.text[:300])
        return r

    if call("GET", "/api/storage/volumes?name=fg_llm").json().get("num_records"):
        return
    svm = call("GET", "/api/svm/svms?name=llm-lab").json()["records"][0]["uuid"]
    call(
        "PATCH",
        f"/api/protocols/nfs/services/{svm}",
        json={
            "protocol.v41_enabled": True,
            "protocol.v41_features.pnfs_enabled": True,
            "transport.tcp_max_transfer_size": 1048576,
        },
    )
    pid = call(
        "POST",
        "/api/protocols/nfs/export-policies?return_records=true",
        json={"name": "labctl_fg_llm", "svm.name": "llm-lab"},
    ).json()["records"][0]["id"]
    call(
        "POST",
        f"/api/protocols/nfs/export-policies/{pid}/rules",
        json={
            "clients": [{"match": "127.0.0.0/8"}],
            "ro_rule": ["sys"],
            "rw_rule": ["sys"],
            "superuser": ["sys"],
            "protocols": ["nfs"],
        },
    )
    call(
        "POST",
        "/api/storage/volumes",
        json={
            "name": "fg_llm",
            "svm.name": "llm-lab",
            "aggregates": [{"name": "aggr1"}, {"name": "aggr2"}],
            "constituents_per_aggregate": 8,
            "size": "10TB",
            "guarantee.type": "none",
            "nas.path": "/fg_llm",
            "nas.export_policy.name": "labctl_fg_llm",
            "nas.unix_permissions": 777,
        },
    )


def provision_and_mount(lab: dict[str, Any]) -> str:
    """Make the lab ready for `labctl run`; returns how it was done."""
    inv = lab["inventory"]
    if _mounted(inv):
        return "already mounted"
    done = subprocess.run(
        [sys.executable, "-m", "labctl", "-i", inv, "provision", "--only", "storage"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    how = "labctl provision --only storage + ssh mount"
    if done.returncode != 0:
        _rest_provision(lab)
        how = "rest + ssh mount"
    for target in resolve_hosts(Path(inv), "gpu_hosts"):
        r = Remote(target)
        try:
            server = lab["nfs_server"]
            r.check(
                f"mkdir -p /mnt/fg_llm && mount -t nfs4 -o {MOUNT_OPTS} {server}:/fg_llm /mnt/fg_llm",
                timeout=120,
            )
        finally:
            r.close()
    assert _mounted(inv)
    return how


def _mounted(inv: str) -> bool:
    for target in resolve_hosts(Path(inv), "gpu_hosts"):
        r = Remote(target)
        try:
            rc, out, _ = r.run(f"grep -q ' /mnt/fg_llm ' {target.var('labctl_proc_mounts')}")
        finally:
            r.close()
        if rc != 0:
            return False
    return True
