"""Runs side by side (e.g. nconnect=1 vs 16): one row per metric, one column per run."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labctl.analysis.metrics import SCHEMA
from labctl.report.analyse import analyse
from labctl.report.fmt import num, size


def load_summary(run_dir: Path) -> dict[str, Any]:
    """The run's summary.json when current, else a fresh analysis of its raw files (written into the bundle).

    Raises:
        StateError: `run_dir` is not a run bundle.
    """
    path = run_dir / "summary.json"
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("schema") == SCHEMA:
                return data
        except (OSError, ValueError):
            pass
    return analyse(run_dir).summary


def _nconnect(s: dict[str, Any]) -> str:
    values = {m["opts"].get("nconnect", "1") for m in s["nfs"]["mounts"].values()}
    if not values:
        opts = str(s["manifest"].get("mount_options") or "")
        values = {p.split("=", 1)[1] for p in opts.split(",") if p.startswith("nconnect=")}
    return ",".join(sorted(values)) or "—"


def _mean(cks: list[dict[str, Any]], key: str) -> float | None:
    vals = [c[key] for c in cks if c.get(key) is not None]
    return sum(vals) / len(vals) if vals else None


def _target(s: dict[str, Any], pct: float) -> float | None:
    return next((t["write_MBps"] for t in s["sizing"].get("targets", []) if t["stall_pct"] == pct), None)


def _busiest(s: dict[str, Any]) -> str:
    cons = s["ontap"]["constituents"]
    total = sum(c["write_bytes"] for c in cons)
    return num(100 * max(c["write_bytes"] for c in cons) / total, 1) if total else "—"


ROWS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("hosts", lambda s: ", ".join(s["run"]["hosts"])),
    ("nconnect", _nconnect),
    ("training wall s", lambda s: num(s["run"]["training"]["wall_s"], 0)),
    ("GPU util mean %", lambda s: num(s["gpu"]["util_mean_pct"])),
    ("GPU util p5 %", lambda s: num(s["gpu"]["p5_pct"])),
    ("GPU baseline %", lambda s: num(s["gpu"]["baseline_pct"])),
    ("NFS read", lambda s: size(s["nfs"]["read_bytes"])),
    ("read MB/s mean", lambda s: num(s["nfs"]["read_MBps"]["mean"], 2)),
    ("read MB/s p99", lambda s: num(s["nfs"]["read_MBps"]["p99"], 2)),
    ("read ÷ data set", lambda s: num(s["dataset"]["read_to_dataset_ratio"], 2)),
    ("read exe ms (per op)", lambda s: num(s["nfs"]["latency_ms"]["read_exe"], 2)),
    ("NFS written", lambda s: size(s["nfs"]["write_bytes"])),
    ("write exe ms (per op)", lambda s: num(s["nfs"]["latency_ms"]["write_exe"], 2)),
    ("RPC sends/s (mean)", lambda s: num(s["nfs"]["xprt_sends_per_s"], 0)),
    ("write MB/s peak", lambda s: num(s["nfs"]["write_MBps"]["peak"], 1)),
    ("checkpoints", lambda s: str(len(s["checkpoints"]))),
    ("checkpoint size (mean)", lambda s: size(_mean(s["checkpoints"], "bytes"))),
    ("checkpoint MB/s (mean)", lambda s: num(_mean(s["checkpoints"], "write_MBps_mean"))),
    ("blocking s (mean)", lambda s: num(_mean(s["checkpoints"], "blocking_s"))),
    ("suppression loss s (mean)", lambda s: num(_mean(s["checkpoints"], "suppression_loss_s"))),
    ("stall %", lambda s: num(None if s["stall_fraction"] is None else 100 * s["stall_fraction"], 2)),
    ("write MB/s for 1 % stall", lambda s: num(_target(s, 1.0), 0)),
    ("write MB/s for 5 % stall", lambda s: num(_target(s, 5.0), 0)),
    ("ONTAP read", lambda s: size(s["ontap"]["read_bytes"])),
    ("ONTAP written", lambda s: size(s["ontap"]["write_bytes"])),
    ("ONTAP vs client written %", lambda s: num(s["ontap"]["agreement"]["write"]["difference_pct"], 1)),
    ("ONTAP write µs/op mean", lambda s: num(s["ontap"]["latency"]["write"]["mean_us"], 0)),
    ("ONTAP write µs/op p99", lambda s: num(s["ontap"]["latency"]["write"]["p99_us"], 0)),
    ("busiest constituent % of writes", _busiest),
    ("checkpoints landed on", lambda s: ", ".join(sorted({str(c["top_constituent"])
                                                          for c in s["ontap"]["checkpoints"]})) or "—"),
    ("warnings", lambda s: str(len(s["warnings"]))),
]


def compare_table(summaries: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header (metric + run ids) and rows of formatted values."""
    header = ["metric"] + [str(s["run"]["id"]) for s in summaries]
    rows = []
    for name, get in ROWS:
        row = [name]
        for s in summaries:
            try:
                row.append(get(s))
            except (KeyError, TypeError, ZeroDivisionError):
                row.append("—")
        rows.append(row)
    return header, rows


def compare_html(header: list[str], rows: list[list[str]]) -> str:
    """A small self-contained page with the comparison table."""
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>labctl compare</title>"
            '<link rel="icon" href="data:,"><style>body{font-family:system-ui,sans-serif;margin:2em}'
            "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.3em .7em;text-align:right}"
            "td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}</style></head><body>"
            f"<h1>labctl compare</h1><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            "</body></html>")
