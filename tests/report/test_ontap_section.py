"""summary.json's `ontap` section from a small raw/_ontap/stats.jsonl of ONTAP-shaped records (each one parsed
by the netapp-ontap SDK's own resource schema): rates from deltas, a counter reset, a missing poll, a failed
query, per-constituent sums, where the checkpoints landed, and the sentence that says so."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from netapp_ontap.resources import Aggregate, IpInterface, Node, Volume

from benchmarks.synthbundle import SynthCheckpoint, SynthSpec, write_run
from labctl.cli import main
from labctl.storage.counters import load_counters, series
from labctl.storage.findings import section

T0 = 1_800_000_000.0
STEP = 5.0
MB = 1 << 20
CONS = [f"fg_llm__{i:04d}" for i in range(1, 17)]
AGGR = {c: ("aggr1" if i < 8 else "aggr2") for i, c in enumerate(CONS)}
NODE = {"aggr1": "cluster1-01", "aggr2": "cluster1-02"}
HOT = "fg_llm__0012"  # every checkpoint lands here (aggr2, cluster1-02)
CK_POLLS = (3, 6, 9)  # the checkpoint is written in the interval ending at this poll
RESET = ("fg_llm__0003", 8)  # this constituent's counters restart at this poll
MISSING, FAILED = 5, 11  # no line at all / the constituents' query failed
POLLS = 12


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _stats(c: dict[str, float], t: float) -> dict[str, Any]:
    return {"timestamp": _iso(t), "status": "ok",
            **{g: {op: int(c[f"{g}.{op}"]) for op in ("read", "write", "other", "total")}
               for g in ("iops_raw", "throughput_raw", "latency_raw")}}


class Cluster:
    """Cumulative raw counters of every object, advanced one poll interval at a time."""

    def __init__(self) -> None:
        keys = [f"{g}.{op}" for g in ("iops_raw", "throughput_raw", "latency_raw")
                for op in ("read", "write", "other", "total")]
        names = ["fg_llm", *CONS, "aggr1", "aggr2", "lif1", "lif2"]
        self.c = {name: dict.fromkeys(keys, 0.0) for name in names}
        self.lat: list[float] = []  # the FlexGroup's write µs/op per interval

    def _add(self, name: str, op: str, nbytes: float, ops: float, lat_us: float) -> None:
        c = self.c[name]
        deltas = ((f"throughput_raw.{op}", nbytes), (f"iops_raw.{op}", ops),
                  (f"latency_raw.{op}", ops * lat_us))
        for k, v in deltas:
            c[k] += v
            c[k.rsplit(".", 1)[0] + ".total"] += v

    def advance(self, burst: bool) -> None:
        lat = 2000.0 if burst else 500.0
        for i, con in enumerate(CONS):
            write = 1 * MB + (100 * MB if burst and con == HOT else 0)
            read = 2 * MB
            for name in (con, "fg_llm", AGGR[con], "lif1" if i % 2 else "lif2"):
                self._add(name, "write", write, write / (256 << 10), lat)
                self._add(name, "read", read, read / (1 << 20), 300.0)
        self.lat.append(lat)

    def records(self, t: float) -> dict[str, list[dict[str, Any]]]:
        c = self.c
        return {
            "flexgroup": [{"name": "fg_llm", "uuid": "u-fg", "statistics": _stats(c["fg_llm"], t),
                           "metric": {"duration": "PT15S", "status": "ok", "timestamp": _iso(t)}}],
            "constituents": [{"name": n, "uuid": f"u-{n}", "aggregates": [{"name": AGGR[n], "uuid": AGGR[n]}],
                              "statistics": _stats(c[n], t)} for n in CONS],
            "nodes": [{"name": n, "uuid": n, "statistics": {"timestamp": _iso(t), "status": "ok",
                                                             "processor_utilization_raw": 0,
                                                             "processor_utilization_base": 0}}
                      for n in NODE.values()],
            "aggregates": [{"name": a, "uuid": a, "node": {"name": NODE[a], "uuid": NODE[a]},
                            "statistics": _stats(c[a], t)} for a in NODE],
            "lifs": [{"name": n, "uuid": n, "location": {"node": {"name": node}},
                      "statistics": {"timestamp": _iso(t), "status": "ok",
                                     "throughput_raw": {op: int(c[n][f"throughput_raw.{op}"])
                                                        for op in ("read", "write", "total")}}}
                     for n, node in (("lif1", "cluster1-01"), ("lif2", "cluster1-02"))],
        }


SDK = {"flexgroup": Volume, "constituents": Volume, "nodes": Node, "aggregates": Aggregate,
       "lifs": IpInterface}


def write_stats(run_dir: Path, t0: float = T0, polls: int = POLLS, ck_polls: tuple[int, ...] = CK_POLLS,
                damage: bool = True) -> Cluster:
    """raw/_ontap/stats.jsonl as the poller writes it: a poll every STEP s from t0; with `damage` a counter
    reset, a missing poll, a failed query and a truncated line."""
    cluster = Cluster()
    lines = []
    for poll in range(1, polls + 1):
        if poll > 1:
            cluster.advance(poll in ck_polls)
        if damage and poll == RESET[1]:
            cluster.c[RESET[0]] = {k: 0.0 for k in cluster.c[RESET[0]]}  # e.g. a takeover restarts them
        t = t0 + (poll - 1) * STEP
        records = cluster.records(t)
        for kind, recs in records.items():
            for rec in recs:
                SDK[kind].from_dict(rec)  # the SDK's schema accepts every record (raises on a wrong shape)
        errors = {}
        if damage and poll == FAILED:
            del records["constituents"]
            errors = {"constituents": "no answer within 5 s"}
        if not damage or poll != MISSING:
            lines.append({"poll": poll, "t": t + 0.3, "took_s": 0.2, "records": records, "errors": errors})
    (run_dir / "raw" / "_ontap").mkdir(parents=True, exist_ok=True)
    (run_dir / "raw" / "_ontap" / "stats.jsonl").write_text(
        "".join(json.dumps(ln) + "\n" for ln in lines) + ("{not json\n" if damage else ""))
    return cluster


@pytest.fixture
def bundle(tmp_path: Path) -> tuple[Path, Cluster]:
    return tmp_path, write_stats(tmp_path)


def _summary(nfs_write: float | None = None) -> dict[str, Any]:
    cks = [{"index": k + 1, "start": T0 + (p - 2) * STEP + 1, "end": T0 + (p - 2) * STEP + 3}
           for k, p in enumerate(CK_POLLS)]
    return {"checkpoints": cks, "nfs": {"write_bytes": nfs_write, "read_bytes": None}}


def test_rates_come_from_deltas_across_a_missing_poll(bundle) -> None:
    run_dir, cluster = bundle
    o = section(run_dir, _summary())
    assert o["available"] is True
    total_write = (POLLS - 1) * 16 * MB + 3 * 100 * MB  # every interval, the missing poll's included
    assert o["write_bytes"] == total_write
    assert o["read_bytes"] == (POLLS - 1) * 16 * 2 * MB
    assert o["ops"] == int(cluster.c["fg_llm"]["iops_raw.total"])
    assert o["polls"] == POLLS - 1 and o["failed_polls"] == {"constituents": 1}
    lat = o["latency"]["write"]
    assert lat["mean_us"] == pytest.approx(cluster.c["fg_llm"]["latency_raw.write"]
                                           / cluster.c["fg_llm"]["iops_raw.write"], rel=1e-6)
    # the missing poll merges two intervals into one: one latency sample fewer than the cluster's intervals
    assert lat["p99_us"] == pytest.approx(2000.0) and o["latency"]["read"]["mean_us"] == pytest.approx(300.0)


def test_a_counter_reset_starts_a_new_baseline(bundle) -> None:
    run_dir, _ = bundle
    o = section(run_dir, _summary())
    assert o["counter_resets"] == 1
    by = {x["name"]: x for x in o["constituents"]}
    assert by[RESET[0]]["write_bytes"] == (POLLS - 1 - 1) * MB  # the reset interval counts nothing
    assert by["fg_llm__0001"]["write_bytes"] == (POLLS - 1) * MB


def test_per_constituent_and_node_sums(bundle) -> None:
    run_dir, _ = bundle
    o = section(run_dir, _summary())
    cons = o["constituents"]
    assert [x["name"] for x in cons] == CONS
    placed = {(x["name"], x["aggregate"], x["node"]) for x in cons}
    assert placed == {(c, AGGR[c], NODE[AGGR[c]]) for c in CONS}
    assert sum(x["write_bytes"] for x in cons) == o["write_bytes"] - MB  # all but the reset interval's MiB
    assert by_name(o["constituents"])[HOT]["write_bytes"] == (POLLS - 1) * MB + 300 * MB
    nodes = by_name(o["nodes"])
    assert set(nodes) == {"cluster1-01", "cluster1-02"}
    assert nodes["cluster1-02"]["write_bytes"] == 8 * (POLLS - 1) * MB + 300 * MB
    assert sum(n["write_bytes"] for n in o["nodes"]) == sum(x["write_bytes"] for x in cons)
    assert by_name(o["aggregates"])["aggr2"]["node"] == "cluster1-02"
    assert {x["name"]: x["node"] for x in o["lifs"]} == {"lif1": "cluster1-01", "lif2": "cluster1-02"}
    assert sum(x["write_bytes"] for x in o["lifs"]) == o["write_bytes"]


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in rows}


def test_the_checkpoints_and_the_sentence(bundle) -> None:
    run_dir, _ = bundle
    o = section(run_dir, _summary(nfs_write=None))
    assert [ck["top_constituent"] for ck in o["checkpoints"]] == [HOT] * 3
    assert all(ck["node"] == "cluster1-02" for ck in o["checkpoints"])
    assert o["checkpoints"][0]["write_bytes"] == 116 * MB
    # the second checkpoint's interval spans the missing poll: two intervals of the other writes
    assert [ck["write_bytes"] for ck in o["checkpoints"]] == [116 * MB, 132 * MB, 116 * MB]
    assert o["checkpoints"][1]["by_constituent"][HOT] == 102 * MB
    assert o["findings"][0] == (f"all 3 checkpoints landed on {HOT} (cluster1-02): one constituent took "
                                f"{100 * 304 / 364:.0f} % of checkpoint writes")
    assert any("took" in f and "even spread over 16 constituents is 6.2 %" in f for f in o["findings"])


def test_client_vs_storage_agreement_is_explained(bundle) -> None:
    run_dir, _ = bundle
    total_write = (POLLS - 1) * 16 * MB + 300 * MB
    agree = section(run_dir, _summary(nfs_write=total_write * 1.02))["agreement"]
    assert agree["write"]["difference_pct"] == pytest.approx(-1.96, abs=0.01)
    assert "write: client and storage agree within 2.0 %" in agree["explanation"]
    fewer = section(run_dir, _summary(nfs_write=total_write * 1.5))["agreement"]
    assert "fewer write bytes than the clients" in fewer["explanation"]


def test_the_timeline_series(bundle) -> None:
    run_dir, _ = bundle
    s = series(load_counters(run_dir))
    w = s[("fg_llm", -1, "ontap", "ontap.flexgroup.write.bytes")]
    assert w.unit == "B" and float(w.values.sum()) == (POLLS - 1) * 16 * MB + 300 * MB
    assert np.all(np.diff(w.secs) > 0) and w.secs[0] == int(T0 + STEP)
    lat = s[("fg_llm", -1, "ontap", "ontap.flexgroup.latency_write")]
    merged = (64 * 500 + 464 * 2000) / 528  # op-weighted over the interval spanning the missing poll
    assert lat.unit == "us" and lat.values.tolist() == pytest.approx([500, 2000, 500, merged, 500, 500, 2000,
                                                                      500, 500, 500])
    assert (HOT, -1, "ontap", "ontap.constituents.write.bytes") in s


def test_a_bundle_without_ontap_counters_says_why(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    o = section(tmp_path, _summary())
    assert o["available"] is False and "no raw/_ontap/stats.jsonl" in o["reason"]
    (tmp_path / "raw" / "_ontap").mkdir()
    (tmp_path / "raw" / "_ontap" / "monitors.json").write_text(json.dumps({"monitors": [
        {"name": "ontap", "status": "skipped",
         "reason": "ONTAP refused every counter query: GET …: HTTP 403"}]}))
    o = section(tmp_path, _summary())
    assert o == {"available": False,
                 "reason": "the ONTAP poller was skipped: ONTAP refused every counter query: GET …: HTTP 403"}


def test_report_and_compare_show_the_storage_side(tmp_path: Path, capsys) -> None:
    spec = SynthSpec(warmup_s=10, train_s=120, cooldown_s=10, checkpoints=[
        SynthCheckpoint(30, 4, 300_000_000), SynthCheckpoint(90, 4, 300_000_000)], dataset_read_s=10)
    with_ontap, without = tmp_path / "with", tmp_path / "without"
    write_run(with_ontap, spec)
    write_run(without, spec)
    t0 = spec.start_epoch - 2.0
    polls = int((spec.end_epoch - t0) // STEP) + 2
    ck_polls = tuple(int((spec.train_start + ck.offset_s - t0) // STEP) + 2 for ck in spec.checkpoints)
    write_stats(with_ontap, t0=t0, polls=polls, ck_polls=ck_polls, damage=False)
    assert main(["report", str(with_ontap)]) == 0 and main(["report", str(without)]) == 0
    o = json.loads((with_ontap / "summary.json").read_text())["ontap"]
    assert o["available"] and len(o["constituents"]) == 16
    assert {n["name"] for n in o["nodes"]} == set(NODE.values())
    assert o["findings"][0].startswith(f"all 2 checkpoints landed on {HOT} (cluster1-02)")
    rows = pq.read_table(with_ontap / "timeline.parquet").to_pylist()
    fg = [r for r in rows if r["source"] == "ontap" and r["metric"] == "ontap.flexgroup.write.bytes"]
    assert sum(r["value"] for r in fg) == o["write_bytes"] and {r["host"] for r in fg} == {"fg_llm"}
    page = (with_ontap / "report.html").read_text()
    assert "Storage side (ONTAP)" in page and "Per constituent" in page and "Figure S2." in page
    assert html.escape(o["findings"][0]) in page
    absent = json.loads((without / "summary.json").read_text())["ontap"]
    assert absent["available"] is False
    assert "Not available: no raw/_ontap/stats.jsonl" in (without / "report.html").read_text()
    capsys.readouterr()
    assert main(["compare", str(with_ontap), str(without)]) == 0
    out = capsys.readouterr().out
    assert "ONTAP written" in out and "checkpoints landed on" in out and HOT in out


def test_failed_polls_and_refused_queries_are_named(bundle) -> None:
    run_dir, _ = bundle
    (run_dir / "raw" / "_ontap" / "monitors.json").write_text(json.dumps({"monitors": [
        {"name": "ontap", "status": "stopped", "polls": POLLS - 1, "failed_polls": 1,
         "errors": ["constituents: no answer within 5 s"],
         "skipped": {"lifs": "GET /api/network/ip/interfaces: HTTP 403 (code 6): not authorized for that "
                             "command"}}]}))
    o = section(run_dir, _summary())
    assert o["available"] and o["failed_polls"] == {"constituents": 1}
    note = o["findings"][-1]
    assert note.startswith(f"1 of {POLLS - 1} ONTAP polls had a failed query")
    assert "constituents: no answer within 5 s" in note and "ONTAP lifs not polled: GET" in note


def test_checkpoints_on_several_constituents_are_counted_per_constituent() -> None:
    from labctl.storage.findings import findings

    cks = [{"top_constituent": t, "node": n, "write_bytes": 100, "by_constituent": {t: 100}}
           for t, n in (("fg_llm__0002", "cluster1-02"), ("fg_llm__0002", "cluster1-02"),
                        ("fg_llm__0015", "cluster1-01"))]
    o = {"checkpoints": cks, "constituents": [], "nodes": [], "agreement": {"explanation": "-"}}
    assert findings(o)[0] == ("the 3 checkpoints landed on 2 constituents (fg_llm__0002 (cluster1-02): 2, "
                              "fg_llm__0015 (cluster1-01): 1); each burst's top constituent took 100 % of "
                              "checkpoint writes")
