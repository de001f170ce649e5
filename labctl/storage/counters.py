"""The storage side: rates from ONTAP's raw counters in `raw/_ontap/stats.jsonl` (from the run's poller).

As NetApp Harvest does, every number is a delta of a raw counter between two polls of the same object:
bytes from `throughput_raw`, ops from `iops_raw`, latency as Δ`latency_raw` / Δ`iops_raw` (µs per op, per op
type), over Δ of ONTAP's own `statistics.timestamp`. A counter that went down (a reset: takeover, reboot)
starts a new baseline and that interval counts nothing; a missing poll only makes the next interval longer
(the raw counters are cumulative, so no byte is lost).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labctl.analysis.clock import iso_epoch
from labctl.analysis.rawfile import read_text
from labctl.analysis.series import Series
from labctl.analysis.timeline import Binned, bin_series

STATS = Path("raw") / "_ontap" / "stats.jsonl"
OPS = ("read", "write", "other", "total")
COUNTERS = (*(f"{g}_raw.{op}" for g in ("iops", "throughput", "latency") for op in OPS),
            "processor_utilization_raw", "processor_utilization_base")
OFFSET_TOLERANCE_S = 2.0  # ONTAP's timestamps are used as they are unless the cluster clock is farther off


@dataclass
class Interval:
    """One object's counter deltas between two polls: (t0, t1] in controller time."""

    t0: float
    t1: float
    d: dict[str, float]


@dataclass
class Counters:
    """Every polled object's intervals, by kind and name, and what the file told about itself."""

    intervals: dict[str, dict[str, list[Interval]]] = field(default_factory=dict)
    last: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # kind → name → last record
    polls: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # kind → polls whose query for it failed
    resets: int = 0
    offset_s: float = 0.0
    window: tuple[float, float] | None = None


def _flat(stats: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in COUNTERS:
        group, _, op = key.partition(".")
        value = (stats.get(group) or {}).get(op) if op else stats.get(group)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def load_counters(run_dir: Path) -> Counters:
    """Parse stats.jsonl into per-object intervals (a damaged line is skipped)."""
    lines = []
    for raw in read_text(run_dir / STATS).splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and isinstance(line.get("records"), dict):
            lines.append(line)
    lines.sort(key=lambda ln: float(ln.get("t") or 0))
    c = Counters(polls=len(lines))
    gaps = [float(ln["t"]) - t for ln in lines for r in ln["records"].get("flexgroup") or []
            if (t := iso_epoch((r.get("statistics") or {}).get("timestamp"))) is not None]
    median = float(np.median(gaps)) if gaps else 0.0
    c.offset_s = median if abs(median) > OFFSET_TOLERANCE_S else 0.0
    prev: dict[tuple[str, str], tuple[float, dict[str, float]]] = {}
    for line in lines:
        for kind in ("flexgroup", "constituents", "nodes", "aggregates", "lifs"):
            records = line["records"].get(kind)
            if records is None:
                if kind in (line.get("errors") or {}):  # else not asked (not allowed): no failure
                    c.failed[kind] = c.failed.get(kind, 0) + 1
                continue
            for rec in records:
                name = str(rec.get("name") or rec.get("uuid") or "?")
                stats = rec.get("statistics") or {}
                t = iso_epoch(stats.get("timestamp"))
                t = float(line["t"]) if t is None else t + c.offset_s
                c.last.setdefault(kind, {})[name] = rec
                now = _flat(stats)
                before = prev.get((kind, name))
                prev[(kind, name)] = (t, now)
                if before is None or t <= before[0]:
                    continue
                d = {k: v - before[1][k] for k, v in now.items() if k in before[1]}
                if any(v < 0 for v in d.values()):
                    c.resets += 1
                    continue
                c.intervals.setdefault(kind, {}).setdefault(name, []).append(Interval(before[0], t, d))
                c.window = (min(c.window[0], before[0]), max(c.window[1], t)) if c.window else (before[0], t)
    return c


def _sum(intervals: list[Interval], key: str) -> float:
    return float(sum(i.d.get(key, 0.0) for i in intervals))


def latency(intervals: list[Interval]) -> dict[str, dict[str, float | None]]:
    """Per op type: mean µs/op (op-weighted over the run) and p99 of the per-interval latencies."""
    out: dict[str, dict[str, float | None]] = {}
    for op in OPS:
        ops, lat = _sum(intervals, f"iops_raw.{op}"), _sum(intervals, f"latency_raw.{op}")
        per = [i.d[f"latency_raw.{op}"] / i.d[f"iops_raw.{op}"] for i in intervals
               if i.d.get(f"iops_raw.{op}", 0) > 0 and f"latency_raw.{op}" in i.d]
        out[op] = {"mean_us": round(lat / ops, 3) if ops else None,
                   "p99_us": round(float(np.percentile(per, 99)), 3) if per else None}
    return out


def _name(obj: Any) -> str | None:
    if isinstance(obj, list):
        obj = obj[0] if obj else None
    return str(obj["name"]) if isinstance(obj, dict) and obj.get("name") else None


def _bytes(intervals: list[Interval]) -> dict[str, int]:
    return {"read_bytes": int(_sum(intervals, "throughput_raw.read")),
            "write_bytes": int(_sum(intervals, "throughput_raw.write"))}


def totals(c: Counters) -> dict[str, Any]:
    """The FlexGroup's bytes, ops and latency; per constituent, node, aggregate and LIF bytes."""
    fg = [i for ivs in c.intervals.get("flexgroup", {}).values() for i in ivs]
    agg_node = {a: _name(r.get("node")) for a, r in c.last.get("aggregates", {}).items()}
    cons: list[dict[str, Any]] = []
    for name, ivs in sorted(c.intervals.get("constituents", {}).items()):
        rec = c.last["constituents"][name]
        agg = _name(rec.get("aggregates"))  # then its node comes from the aggregates' records
        on = agg_node.get(agg) if agg else _name(rec.get("node"))
        cons.append({"name": name, "node": on, "aggregate": agg, **_bytes(ivs)})
    nodes: dict[str, dict[str, Any]] = {n: {"name": n, "read_bytes": 0, "write_bytes": 0}
                                       for n in sorted(c.last.get("nodes", {}))}
    for con in cons:
        name = str(con["node"])
        node = nodes.setdefault(name, {"name": name, "read_bytes": 0, "write_bytes": 0})
        node["read_bytes"] += con["read_bytes"]
        node["write_bytes"] += con["write_bytes"]
    for name, ivs in c.intervals.get("nodes", {}).items():
        base = _sum(ivs, "processor_utilization_base")
        if name in nodes and base > 0:
            nodes[name]["cpu_busy_pct"] = round(100 * _sum(ivs, "processor_utilization_raw") / base, 2)
    aggs = [{"name": n, "node": _name(c.last["aggregates"][n].get("node")), **_bytes(ivs)}
            for n, ivs in sorted(c.intervals.get("aggregates", {}).items())]
    lifs = [{"name": n, "node": _name((c.last["lifs"][n].get("location") or {}).get("node")), **_bytes(ivs)}
            for n, ivs in sorted(c.intervals.get("lifs", {}).items())]
    return {**_bytes(fg), "ops": int(_sum(fg, "iops_raw.total")),
            "ops_by_type": {op: int(_sum(fg, f"iops_raw.{op}")) for op in OPS[:3]},
            "latency": latency(fg), "constituents": cons, "nodes": list(nodes.values()),
            "aggregates": aggs, "lifs": lifs}


def _binned(metric: str, unit: str, t1: list[float], values: list[float]) -> Binned:
    """Values at interval ends on whole seconds, as the timeline bins every series."""
    return bin_series(metric, Series(unit, np.array(t1, dtype=float), np.array(values, dtype=float)))


def series(c: Counters) -> dict[tuple[str, int, str, str], Binned]:
    """The ONTAP rows of the timeline, keyed (object name, -1, "ontap", metric): bytes per interval of the
    FlexGroup, each constituent, aggregate and LIF (at the interval's end), and the FlexGroup's µs/op."""
    out: dict[tuple[str, int, str, str], Binned] = {}
    for kind in ("flexgroup", "constituents", "aggregates", "lifs"):
        for name, ivs in c.intervals.get(kind, {}).items():
            ends = [i.t1 for i in ivs]
            for op in ("read", "write"):
                vals = [i.d.get(f"throughput_raw.{op}", 0.0) for i in ivs]
                metric = f"ontap.{kind}.{op}.bytes"
                out[(name, -1, "ontap", metric)] = _binned(metric, "B", ends, vals)
            if kind != "flexgroup":
                continue
            for op in OPS:
                ok = [i for i in ivs if i.d.get(f"iops_raw.{op}", 0) > 0]
                if ok:
                    lat = [i.d.get(f"latency_raw.{op}", 0.0) / i.d[f"iops_raw.{op}"] for i in ok]
                    metric = f"ontap.{kind}.latency_{op}"
                    out[(name, -1, "ontap", metric)] = _binned(metric, "us", [i.t1 for i in ok], lat)
    return out
