"""report.html's storage side (summary.json `ontap`): ONTAP's throughput and latency over time with the
checkpoints, bytes per constituent (balance, and where each checkpoint's burst landed), the per-node split and
how the clients' and ONTAP's byte counts agree."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from labctl.report.figures import CKPT_C, READ_C, WRITE_C, _mark_checkpoints, png_b64
from labctl.report.fmt import num, size
from labctl.storage.counters import STATS, load_counters

NODE_COLORS = ("#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd")


def _e(x: Any) -> str:
    return html.escape(str(x))


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    cells = (("".join(f'<td{" class=l" if i == 0 else ""}>{_e(c)}</td>' for i, c in enumerate(r)))
             for r in rows)
    body = "".join(f"<tr>{c}</tr>" for c in cells)
    return f'<div class="tw"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def _img(png: str | None, alt: str, caption: str) -> str:
    if png is None:
        return ""
    return (f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{png}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def time_figure(run_dir: Path, o: dict[str, Any], t_ref: float) -> str | None:
    """The FlexGroup's read/write MB/s and µs per op over time (a step per poll interval), checkpoints
    shaded."""
    c = load_counters(run_dir)
    ivs = sorted((i for v in c.intervals.get("flexgroup", {}).values() for i in v), key=lambda i: i.t0)
    if not ivs:
        return None
    fig = Figure(figsize=(10, 5.0))
    top, bottom = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2, sharex=None)
    edges = np.array([i.t1 for i in ivs])
    x = (np.r_[ivs[0].t0, edges] - t_ref) / 60.0
    for op, color in (("read", READ_C), ("write", WRITE_C)):
        rate = [i.d.get(f"throughput_raw.{op}", 0.0) / (i.t1 - i.t0) / 1e6 for i in ivs]
        top.stairs(rate, x, color=color, lw=1.2, label=f"{op} MB/s")
        lat = [i.d[f"latency_raw.{op}"] / i.d[f"iops_raw.{op}"] if i.d.get(f"iops_raw.{op}", 0) > 0
               and f"latency_raw.{op}" in i.d else np.nan for i in ivs]
        bottom.stairs(lat, x, color=color, lw=1.2, label=f"{op} µs/op")
    for ax, label in ((top, "ONTAP throughput (MB/s)"), (bottom, "ONTAP latency (µs/op)")):
        _mark_checkpoints(ax, o.get("_checkpoints", []), t_ref, ax is top)
        ax.set_ylabel(label, fontsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=7)
    bottom.set_xlabel("minutes since training start")
    return png_b64(fig)


def constituent_figure(o: dict[str, Any]) -> str | None:
    """Bytes written per constituent, split into checkpoint bursts and the rest, coloured by node; reads."""
    cons = o["constituents"]
    if not cons:
        return None
    in_ck = {x["name"]: 0 for x in cons}
    for ck in o["checkpoints"]:
        for name, b in ck["by_constituent"].items():
            in_ck[name] = in_ck.get(name, 0) + b
    nodes = sorted({str(x["node"]) for x in cons})
    color = {n: NODE_COLORS[k % len(NODE_COLORS)] for k, n in enumerate(nodes)}
    fig = Figure(figsize=(10, 3.6))
    ax = fig.add_subplot()
    pos = np.arange(len(cons))
    ck = np.array([min(in_ck.get(x["name"], 0), x["write_bytes"]) / 1e6 for x in cons])
    rest = np.array([x["write_bytes"] / 1e6 for x in cons]) - ck
    ax.bar(pos, rest, color=[color[str(x["node"])] for x in cons], label="writes outside checkpoints")
    ax.bar(pos, ck, bottom=rest, color=CKPT_C, label="checkpoint writes")
    ax.plot(pos, [x["read_bytes"] / 1e6 for x in cons], "o", ms=3, color=READ_C, label="reads")
    ax.set_xticks(pos, [f"{x['name'].rsplit('__', 1)[-1]}\n{x['node']}" if k % 4 == 0 else
                        x["name"].rsplit("__", 1)[-1] for k, x in enumerate(cons)], fontsize=7)
    ax.axhline(sum(x["write_bytes"] for x in cons) / len(cons) / 1e6, color="#555", lw=0.8, ls="--",
               label="even spread of writes")
    ax.set_ylabel("MB per constituent")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper left", fontsize=7, title="bar colour = node: " + ", ".join(nodes), title_fontsize=7)
    return png_b64(fig)


def section(run_dir: Path, s: dict[str, Any], t_ref: float) -> list[str]:
    """The storage-side part of report.html."""
    o = s.get("ontap") or {"available": False, "reason": "summary.json has no ontap section"}
    out = ["<h2>Storage side (ONTAP)</h2>"]
    if not o.get("available"):
        return out + [f'<p class="muted">Not available: {_e(o.get("reason"))}</p>']
    out.append('<p class="finding">' + "<br>".join(_e(f) for f in o["findings"]) + "</p>")
    shown = {**o, "_checkpoints": s.get("checkpoints") or []}
    out.append(_img(time_figure(run_dir, shown, t_ref), "ONTAP throughput and latency over time",
                    "Figure S1. The FlexGroup's read/write MB/s and µs per op from deltas of ONTAP's raw "
                    f"counters between polls ({STATS}); shaded: the clients' checkpoint write bursts."))
    out.append(_img(constituent_figure(o), "bytes per constituent",
                    "Figure S2. Bytes written per FlexGroup constituent (colour: its node; orange: writes "
                    "in the poll intervals of a checkpoint burst), reads as dots; dashed: an even spread."))
    lat = o["latency"]
    out += ["<h3>Totals</h3>", _table(
        ["read", "written", "ops", "read µs/op mean (p99)", "write µs/op mean (p99)", "polls", "resets"],
        [[size(o["read_bytes"]), size(o["write_bytes"]), f"{o['ops']:,}",
          f"{num(lat['read']['mean_us'])} ({num(lat['read']['p99_us'])})",
          f"{num(lat['write']['mean_us'])} ({num(lat['write']['p99_us'])})", o["polls"],
          o["counter_resets"]]])]
    a = o["agreement"]
    out += ["<h3>Client vs storage</h3>", _table(
        ["", "clients (NFS)", "ONTAP", "difference"],
        [[d, size(a[d]["client_bytes"]), size(a[d]["ontap_bytes"]), num(a[d]["difference_pct"], 1, "%")]
         for d in ("read", "write")]), f"<p>{_e(a['explanation'])}</p>"]
    out += ["<h3>Per node</h3>", _table(["node", "read", "written", "CPU busy %"],
                                        [[n["name"], size(n["read_bytes"]), size(n["write_bytes"]),
                                          num(n.get("cpu_busy_pct"))] for n in o["nodes"]])]
    out += ["<h3>Checkpoints on the storage side</h3>", _table(
        ["#", "written in its poll intervals", "top constituent", "node", "top share"],
        [[ck["index"], size(ck["write_bytes"]), ck["top_constituent"] or "—", ck["node"] or "—",
          num(None if ck["top_share"] is None else 100 * ck["top_share"], 0, "%")]
         for ck in o["checkpoints"]])]
    out += ["<h3>Per constituent</h3>", _table(
        ["constituent", "aggregate", "node", "read", "written"],
        [[x["name"], x["aggregate"] or "—", x["node"] or "—", size(x["read_bytes"]), size(x["write_bytes"])]
         for x in o["constituents"]])]
    if o["lifs"]:
        out += ["<h3>Per data LIF</h3>", _table(["LIF", "node", "read", "written"],
                                                [[x["name"], x["node"] or "—", size(x["read_bytes"]),
                                                  size(x["write_bytes"])] for x in o["lifs"]])]
    return out
