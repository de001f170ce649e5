"""A generated bundle with known checkpoints: the analysis finds exactly them, their bytes and the stall."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.synthbundle import SynthCheckpoint, SynthSpec, write_run
from labctl.formats import dmon as formats_dmon
from labctl.report.analyse import analyse


def _check(summary, spec: SynthSpec) -> None:
    cks = summary["checkpoints"]
    assert len(cks) == len(spec.checkpoints)
    for ck, want in zip(cks, spec.checkpoints, strict=True):
        assert ck["bytes"] == pytest.approx(want.bytes, rel=0.01)
        assert ck["start"] == spec.train_start + want.offset_s
        assert ck["blocking_s"] == want.duration_s
        assert ck["suppression_s"] == spec.suppression_s
    assert abs(summary["stall_fraction"] - spec.expected_stall_fraction()) < 0.005


def test_three_checkpoints_all_sources(tmp_path):
    spec = write_run(tmp_path / "run", SynthSpec())
    a = analyse(tmp_path / "run")
    s = a.summary
    _check(s, spec)
    assert all(ck["log_save_ts"] is not None for ck in s["checkpoints"])  # cross-checked with the trainer log
    assert s["checkpoints"][0]["paths"] == ["/mnt/fg_llm/output/checkpoint.pth"]
    assert s["checkpoints"][0]["gpu_util_during_pct"] == 0.0
    assert s["nfs"]["source"] == {"gpu1": "mountstats"}
    assert s["nfs"]["read_bytes"] == spec.dataset_bytes
    assert s["nfs"]["write_MBps"]["peak"] == pytest.approx(100.0)
    lat = s["nfs"]["latency_ms"]  # the generator's per-op times: READ rtt 2 ms, WRITE exe 6 ms, COMMIT 50 ms
    assert (lat["read_rtt"], lat["write_exe"], lat["commit_exe"]) == (2.0, 6.0, 50.0)
    assert s["gpu"]["baseline_pct"] == pytest.approx(97.0, abs=0.5)
    assert s["dataset"]["caching_warning"]  # read once, 3 epochs: served from cache
    t = {x["stall_pct"]: x["write_MBps"] for x in s["sizing"]["targets"]}
    assert t[1.0] == pytest.approx(2e9 / (0.01 * 300) / 1e6, rel=1e-3)  # size ÷ (1 % × 300 s cadence)
    assert s["parse"] and not any(p["skipped"].get("bad_json") for p in s["parse"])
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["checkpoints"] == json.loads(json.dumps(s["checkpoints"]))
    table = pq.read_table(tmp_path / "run" / "timeline.parquet")
    assert table.column_names == ["host", "gpu", "source", "metric", "value", "unit", "ts"]
    ts_type = table.schema.field("ts").type
    assert pa.types.is_timestamp(ts_type) and ts_type.tz == "UTC"  # whole seconds (Parquet stores ms)
    assert table.column("ts")[0].value % 1000 == 0
    assert table.num_rows == s["timeline_rows"]


@pytest.mark.parametrize("source", ["bpftrace", "nfsiostat"])
def test_checkpoints_from_a_single_nfs_source(tmp_path, source):
    spec = write_run(tmp_path / "run", SynthSpec(sources=("dmon", source, "train")))
    s = analyse(tmp_path / "run").summary
    assert s["nfs"]["source"] == {"gpu1": source}
    _check(s, spec)


def test_uneven_checkpoints_two_hosts_no_suppression(tmp_path):
    spec = SynthSpec(hosts=("gpu1", "gpu2"), gpus=4, train_s=1200, suppression_s=0, checkpoints=[
        SynthCheckpoint(100, 8, 1_000_000_000), SynthCheckpoint(500, 25, 3_000_000_000),
        SynthCheckpoint(1000, 4, 500_000_000)])
    write_run(tmp_path / "run", spec)
    s = analyse(tmp_path / "run").summary
    _check(s, spec)
    assert len(s["gpu"]["per_gpu"]) == 8 and s["sizing"]["cadence_s"] == 450.0
    assert s["dataset"]["expected_read_bytes_uncached"] == spec.dataset_bytes * 3 * 2


def test_local_time_offset_is_inferred_when_clock_json_lacks_it(tmp_path):
    spec = write_run(tmp_path / "run", SynthSpec(utc_offset_s=7200, declare_utc_offset=False))
    s = analyse(tmp_path / "run").summary
    _check(s, spec)
    assert any("+2.00 h from UTC" in w for w in s["warnings"])


def test_degrades_without_manifest_gpu_data_or_trainer_log(tmp_path):
    spec = write_run(tmp_path / "run", SynthSpec(sources=("mountstats",)))
    (tmp_path / "run" / "manifest.json").unlink()
    (tmp_path / "run" / "raw" / "gpu1" / "monitors.json").write_text(json.dumps({"host": "gpu1", "monitors": [
        {"name": "bpftrace", "exit_status": 1, "status": "failed", "errors": ["tracepoint not found"]}]}))
    s = analyse(tmp_path / "run").summary
    assert "gpu1: monitor bpftrace: tracepoint not found" in s["warnings"]
    assert len(s["checkpoints"]) == 3 and s["gpu"]["util_mean_pct"] is None
    assert s["checkpoints"][0]["bytes"] == pytest.approx(spec.checkpoints[0].bytes, rel=0.01)
    assert any("manifest.json" in w for w in s["warnings"]) and any("GPU" in w for w in s["warnings"])
    assert s["manifest"]["versions"] is None


def test_trainer_saves_without_nfs_data_become_log_checkpoints(tmp_path):
    write_run(tmp_path / "run", SynthSpec(sources=("dmon", "train")))
    s = analyse(tmp_path / "run").summary
    assert [c["source"] for c in s["checkpoints"]] == ["trainer_log"] * 3
    assert s["checkpoints"][0]["duration_s"] == pytest.approx(20.5)  # save line → next log line


def test_bundle_written_by_the_run_side_in_the_simulated_lab(tmp_path):
    """A bundle from `labctl run` (emulated trainer, 2 hosts × 8 GPUs, 1 used each, nconnect=16)."""
    import shutil

    from tests.report.conftest import FIXTURES

    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "simlab_run", run)
    s = analyse(run).summary
    assert s["nfs"]["source"] == {"gpu1": "mountstats", "gpu2": "mountstats"}
    assert {m["opts"]["nconnect"] for m in s["nfs"]["mounts"].values()} == {"16"}
    assert s["gpu"]["gpus"] == 2 and len(s["gpu"]["idle_gpus"]) == 14
    assert s["gpu"]["util_mean_pct"] > 80
    cks = s["checkpoints"]
    assert len(cks) == 2 and all(c["log_saves"] == 2 for c in cks)  # each host saved once per evaluation
    assert all(c["bytes"] == pytest.approx(24e6, rel=0.01) for c in cks)
    assert any(p.endswith("/gpu1/checkpoint.pth") for p in cks[0]["paths"])
    assert s["dataset"]["caching_warning"]  # reads came from the page cache
    bad = {k: v for p in s["parse"] for k, v in p["skipped"].items()
           if k not in ("first_block_since_mount", "top_line_nconnect")}
    assert not bad


def test_a_garbled_timestamp_does_not_stretch_the_run(tmp_path):
    spec = write_run(tmp_path / "run", SynthSpec())
    dmon = tmp_path / "run" / "raw" / "gpu1" / "dmon.log"
    last = dmon.read_text().splitlines()[-1].split()
    bad = " ".join(["19700101", "00:00:05"] + last[2:])  # a garbled date that still parses
    dmon.write_text(dmon.read_text() + bad + "\n")
    assert formats_dmon.write_compact(dmon)  # the agent's record of that log
    s = analyse(tmp_path / "run").summary
    _check(s, spec)
    assert any("far outside the run" in w for w in s["warnings"])
    assert s["run"]["start"] > 1_700_000_000


def _edit_manifest(run, change) -> None:
    path = run / "manifest.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(("mem", "fits"), [(1_000_000_000, True), (100_000_000, False)])
def test_data_set_size_and_memory_are_what_the_hosts_found(tmp_path, mem, fits):
    run = tmp_path / "run"
    spec = write_run(run, SynthSpec())  # reads the 600 MB data set once; 3 epochs
    facts = {"dataset_bytes": spec.dataset_bytes // 3, "mem_total_bytes": mem}
    _edit_manifest(run, lambda doc: doc["hosts"][0].update(facts=facts))
    d = analyse(run).summary["dataset"]
    assert d["size_bytes"] == spec.dataset_bytes // 3  # the host's file, not the emulator's setting
    assert d["read_to_dataset_ratio"] == 3.0 and d["expected_read_bytes_uncached"] == spec.dataset_bytes
    assert (d["caching_warning"] is not None) == fits  # read 3 ×: only "fits in memory" can warn
    if fits:
        assert "fits in host memory" in d["caching_warning"]


@pytest.mark.parametrize("recorded", [True, False])
def test_nconnect_comes_from_the_manifest_when_mountstats_is_absent(tmp_path, recorded):
    run = tmp_path / "run"
    write_run(run, SynthSpec(sources=("dmon", "nfsiostat", "train"), nconnect=4))
    if not recorded:
        _edit_manifest(run, lambda doc: doc.update(mount_options={"gpu1": {"mountstats_opts": 7}}))
    parse = {p["source"]: p for p in analyse(run).summary["parse"]}
    skipped = parse["nfsiostat"]["skipped"].get("top_line_nconnect", 0)
    assert (skipped > 0) == recorded  # nconnect 4: nfsiostat's top ops/s (one transport) is not used
