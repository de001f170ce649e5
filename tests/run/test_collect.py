"""Collection: resumable, sha256-verified, never overwriting; manifest checksums."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from labctl.errors import HostError
from labctl.experiment.collect import fetch_file
from labctl.experiment.manifest import file_entries, finalize, verify


class _File(io.BytesIO):
    def prefetch(self, size=None):
        self.prefetched = size


class FakeRemote:
    """The part of `Remote` collection uses, over local bytes."""

    class target:  # noqa: N801
        name = "gpu1"

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.opened: list[tuple[str, int]] = []

    def sftp(self):
        return self

    def open(self, path: str, mode: str = "rb"):
        f = _File(self.files[path])
        self.opened.append((path, 0))
        return f


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_fetch_resume_skip_and_never_overwrite(tmp_path):
    data = bytes(range(256)) * 5000
    remote = FakeRemote({"/r/raw/train.log": data})
    local = tmp_path / "raw" / "gpu1" / "train.log"
    local.parent.mkdir(parents=True)
    local.with_name("train.log.part").write_bytes(data[:100_000])  # an interrupted earlier download
    got = fetch_file(remote, "/r/raw/train.log", local, len(data), sha(data))
    assert got["status"] == "fetched" and got["resumed_from"] == 100_000
    assert local.read_bytes() == data and not local.with_name("train.log.part").exists()
    assert fetch_file(remote, "/r/raw/train.log", local, len(data), sha(data)) == {"status": "present"}
    newer = data + b"more"
    remote.files["/r/raw/train.log"] = newer
    got = fetch_file(remote, "/r/raw/train.log", local, len(newer), sha(newer))
    assert got["path"].endswith("train.log.1")
    assert local.read_bytes() == data and (local.parent / "train.log.1").read_bytes() == newer


def test_a_corrupt_download_is_refused(tmp_path):
    remote = FakeRemote({"/r/x": b"what arrives"})
    local = tmp_path / "x"
    with pytest.raises(HostError, match="sha256"):
        fetch_file(remote, "/r/x", local, 12, sha(b"what was hashed"))
    assert not local.exists() and not (tmp_path / "x.part").exists()


def make_bundle(tmp_path: Path) -> tuple[Path, dict]:
    bundle = tmp_path / "run"
    for host in ("gpu1", "gpu2"):
        d = bundle / "raw" / host
        d.mkdir(parents=True)
        (d / "train.log").write_text(f"log of {host}\n")
        (d / "dmon.log").write_text("#Date Time gpu sm\n")
    facts = {
        "kernel": "6.1",
        "gpu_driver": "535",
        "bpftrace": "bpftrace v0.17.0",
        "nfs_utils": "2.6.2",
        "python": "3.11",
        "mounts": [{"device": "s:/fg_llm", "fstype": "nfs4", "options": "rw,vers=4.1"}],
        "mountstats_opts": "rw,vers=4.1,nconnect=16",
        "nconnect_xprts": 16,
    }
    manifest = {
        "run_id": "r",
        "experiment": {},
        "inventory": str(tmp_path / "no-inventory"),
        "trainer": "emulate",
        "llmstudio": {"version": "v1.2.0"},
        "times": {"started": 1.0},
        "errors": [],
        "hosts": [
            {"name": h, "facts": facts, "rendered_config": "problem_type: x\n"} for h in ("gpu1", "gpu2")
        ],
    }
    return bundle, manifest


def test_finalize_writes_a_complete_verifiable_manifest(tmp_path):
    bundle, manifest = make_bundle(tmp_path)
    reports = [
        {
            "name": h,
            "errors": [],
            "status": {
                "state": "finished",
                "ended_at": 5.0,
                "trainer": {"finished_flag": True},
                "monitors": {},
            },
        }
        for h in ("gpu1", "gpu2")
    ]
    m = finalize(bundle, manifest, reports)
    assert m["complete"] and m["success"] and m["state"] == "finished"
    assert m["ontap"]["available"] is False and m["ontap"]["reason"]  # no lab config: recorded, not fatal
    assert m["versions"]["hosts"]["gpu1"]["bpftrace"] == "bpftrace v0.17.0"
    assert m["versions"]["llmstudio"] == "v1.2.0" and m["versions"]["labctl"]
    assert m["mount_options"]["gpu2"]["xprt_count"] == 16
    assert {e["path"] for e in m["files"]} == {
        f"raw/{h}/{n}" for h in ("gpu1", "gpu2") for n in ("train.log", "dmon.log")
    }
    assert m["rendered_config"]["gpu1"].startswith("problem_type")
    assert verify(bundle, m) == []
    (bundle / "raw" / "gpu2" / "train.log").write_text("tampered\n")
    assert verify(bundle, m) == ["raw/gpu2/train.log: checksum or size differs"]
    json.dumps(m)


def test_failed_training_is_still_a_complete_bundle(tmp_path):
    bundle, manifest = make_bundle(tmp_path)
    reports = [
        {"name": "gpu1", "errors": [], "status": {"state": "failed", "trainer": {"finished_flag": False}}},
        {"name": "gpu2", "errors": [], "status": {"state": "finished", "trainer": {"finished_flag": True}}},
    ]
    m = finalize(bundle, manifest, reports)
    assert m["complete"] and not m["success"] and m["state"] == "failed"
    assert len(file_entries(bundle)) == 4
