"""summary.json's `ontap` section: the storage side's totals, where each checkpoint's burst landed, how the
client's and ONTAP's byte counts agree, and what follows, in plain sentences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labctl.analysis.bundle import monitor_records
from labctl.storage.counters import STATS, Counters, load_counters, totals

MONITORS = Path("raw") / "_ontap" / "monitors.json"
AGREE_PCT = 5.0  # client and storage bytes this close count as agreeing


def section(run_dir: Path, summary: dict[str, Any], counters: Counters | None = None) -> dict[str, Any]:
    """The `ontap` section of a bundle (`available: false` and the reason when it has no usable counters)."""
    if not (run_dir / STATS).is_file():
        return {"available": False, "reason": monitor_reason(run_dir) or (
            f"no {STATS}: the run was made before labctl polled ONTAP, or was never followed by "
            "`labctl run`/`attach` (the controller polls ONTAP while it follows a run)")}
    c = counters or load_counters(run_dir)
    if not c.intervals.get("flexgroup"):
        return {"available": False, "reason": monitor_reason(run_dir) or (
            f"{STATS} holds {c.polls} poll(s) but not two of the FlexGroup to take a delta from")}
    out: dict[str, Any] = {"available": True, "source": str(STATS), "polls": c.polls,
                           "failed_polls": c.failed, "counter_resets": c.resets,
                           "clock_offset_s": round(c.offset_s, 3),
                           "window": {"start": c.window[0], "end": c.window[1]} if c.window else None,
                           **totals(c)}
    out["checkpoints"] = checkpoints(c, summary.get("checkpoints") or [], out["constituents"])
    out["agreement"] = agreement(out, summary)
    out["findings"] = findings(out)
    if reason := monitor_reason(run_dir):
        out["findings"].append(reason)
    return out


def checkpoints(c: Counters, cks: list[dict[str, Any]], cons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per checkpoint: the constituents' write bytes in the poll intervals overlapping its burst."""
    node = {x["name"]: x["node"] for x in cons}
    out = []
    for ck in cks:
        start, end = ck.get("start"), ck.get("end")
        if not isinstance(start, int | float) or not isinstance(end, int | float):
            continue
        per = {name: sum(i.d.get("throughput_raw.write", 0.0) for i in ivs if i.t0 < end and i.t1 > start)
               for name, ivs in c.intervals.get("constituents", {}).items()}
        total = sum(per.values())
        top = max(per, key=lambda n: per[n]) if total > 0 else None
        out.append({"index": ck.get("index"), "start": start, "end": end, "write_bytes": int(total),
                    "top_constituent": top, "node": node.get(top) if top else None,
                    "top_share": round(per[top] / total, 4) if top else None,
                    "by_constituent": {n: int(b) for n, b in sorted(per.items()) if b > 0}})
    return out


def agreement(o: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """The client's NFS bytes against ONTAP's, per direction, with why they differ."""
    nfs = summary.get("nfs") or {}
    w, n = o.get("window") or {}, max(1, int(o.get("polls") or 1) - 1)
    every = f"{(w.get('end', 0) - w.get('start', 0)) / n:.0f} s" if w else "interval"
    out: dict[str, Any] = {}
    notes = []
    for d in ("read", "write"):
        client, storage = nfs.get(f"{d}_bytes"), o[f"{d}_bytes"]
        diff = 100.0 * (storage - client) / client if isinstance(client, int | float) and client > 0 else None
        out[d] = {"client_bytes": client, "ontap_bytes": storage,
                  "difference_pct": None if diff is None else round(diff, 2)}
        if diff is None:
            continue
        if diff < -AGREE_PCT:
            notes.append(f"ONTAP counted {-diff:.1f} % fewer {d} bytes than the clients: what moved before "
                         "the first poll or after the last one is outside ONTAP's window (a poll every "
                         f"{every}); a failed poll loses nothing, a counter reset loses its interval")
        elif diff > AGREE_PCT:
            notes.append(f"ONTAP counted {diff:.1f} % more {d} bytes than the clients: it counts every "
                         "client of the FlexGroup (hosts outside the run too), and its window spans whole "
                         "poll intervals around the clients' measurements")
        else:
            notes.append(f"{d}: client and storage agree within {abs(diff):.1f} %")
    out["explanation"] = "; ".join(notes) if notes else "no client-side NFS bytes to compare with"
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def findings(o: dict[str, Any]) -> list[str]:
    """What follows from the storage side, in sentences."""
    out = []
    cks = [ck for ck in o["checkpoints"] if ck["top_constituent"]]
    if cks:
        tops = {ck["top_constituent"] for ck in cks}
        ck_total = sum(ck["write_bytes"] for ck in cks)
        on_top = sum(ck["by_constituent"].get(t, 0) for t in tops for ck in cks)
        if len(tops) == 1:
            (t,) = tops
            out.append(f"all {len(cks)} checkpoints landed on {t} ({cks[0]['node']}): one constituent took "
                       f"{_pct(on_top / ck_total)} of checkpoint writes")
        else:
            landed = [(ck["top_constituent"], ck["node"]) for ck in cks]
            names = ", ".join(f"{t} ({node}): {landed.count((t, node))}" for t, node in dict.fromkeys(landed))
            out.append(f"the {len(cks)} checkpoints landed on {len(tops)} constituents ({names}); each "
                       f"burst's top constituent took {_pct(on_top / ck_total)} of checkpoint writes")
    cons = o["constituents"]
    written = sum(x["write_bytes"] for x in cons)
    if cons and written > 0:
        busiest = max(cons, key=lambda x: x["write_bytes"])
        out.append(f"over the run {busiest['name']} took {_pct(busiest['write_bytes'] / written)} of the "
                   f"FlexGroup's writes (an even spread over {len(cons)} constituents is "
                   f"{100 / len(cons):.1f} %)")
    nodes = [n for n in o["nodes"] if n["read_bytes"] + n["write_bytes"] > 0]
    moved = sum(n["read_bytes"] + n["write_bytes"] for n in o["nodes"])
    if moved > 0:
        out.append("per node: " + ", ".join(
            f"{n['name']} {_pct((n['read_bytes'] + n['write_bytes']) / moved)}" for n in nodes))
    out.append(o["agreement"]["explanation"])
    return out


def monitor_reason(run_dir: Path) -> str | None:
    """What raw/_ontap/monitors.json says went wrong (skipped or failed poller, failed polls, queries not
    allowed), or None."""
    mons = monitor_records(run_dir / MONITORS, [])  # through formats.bundle.Monitors, as the hosts'
    rec = mons[0] if mons and isinstance(mons[0], dict) else {}
    if rec.get("status") in ("skipped", "failed"):
        why = rec.get("reason") or "; ".join(rec.get("errors") or [])
        return f"the ONTAP poller was {rec['status']}: {why}"
    notes = []
    if rec.get("failed_polls"):
        notes.append(f"{rec['failed_polls']} of {rec.get('polls')} ONTAP polls had a failed query (the next "
                     f"poll's delta covers the gap): {'; '.join(rec.get('errors') or [])[:300]}")
    notes += [f"ONTAP {kind} not polled: {why}" for kind, why in (rec.get("skipped") or {}).items()]
    return "; ".join(notes) or None
