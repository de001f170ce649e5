"""report.html: one self-contained page (inline CSS and PNG figures, no scripts, readable offline)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from labctl.fileops import write_text_atomic
from labctl.report import figures, storage
from labctl.report.analyse import Analysis
from labctl.report.fmt import clock, num, size, utc

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
.tw{overflow-x:auto}table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.muted{color:#666;font-size:.9em}
.finding{background:#f6f9ff;border-left:4px solid #1f77b4;padding:.6em 1em}
.warn{background:#fff8e6;border-left:4px solid #e0a000;padding:.4em 1em;margin:.3em 0}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}img{max-width:100%}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;overflow-wrap:anywhere}
pre{background:#f7f7f7;padding:.8em;overflow:auto;max-height:30em;white-space:pre-wrap}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _table(head: list[str], rows: list[list[Any]], left: int = 1) -> str:
    def cells(tag: str, values: list[Any]) -> str:
        return "".join(f'<{tag} class="{"l" if i < left else ""}">{_e(v)}</{tag}>'
                       for i, v in enumerate(values))

    body = "".join(f"<tr>{cells('td', r)}</tr>" for r in rows)
    return (f'<div class="tw"><table><thead><tr>{cells("th", head)}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _figure(b64: str | None, alt: str, caption: str) -> str:
    if not b64:
        return f'<p class="muted">{_e(alt)}: no data.</p>'
    return (f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _pct(fraction: float | None) -> str:
    return num(None if fraction is None else fraction * 100, 2)


def finding(s: dict[str, Any]) -> str:
    """The run's result in a few sentences (the reference lab's claim, or its opposite)."""
    g, n, ds, cks = s["gpu"], s["nfs"], s["dataset"], s["checkpoints"]
    wall = num(s["run"]["training"]["wall_s"], 0)
    parts = [f"GPU utilisation averaged {num(g['util_mean_pct'])} % over {wall} s of training "
             f"(steady state {num(g['baseline_pct'])} %).",
             f"NFS moved {size(n['read_bytes'])} read and {size(n['write_bytes'])} written"
             + ("" if ds["read_to_dataset_ratio"] is None
                else f"; reads were {num(ds['read_to_dataset_ratio'], 2)}× the data set") + "."]
    if not cks:
        return " ".join(parts + ["No checkpoint write bursts were found."])
    sized = [c["bytes"] for c in cks if c["bytes"]]
    avg = f" of {size(sum(sized) / len(sized))} on average" if sized else ""
    parts.append(f"{len(cks)} checkpoint(s){avg} cost the GPUs {num(s['stall_s'])} s: "
                 f"a stall fraction of {_pct(s['stall_fraction'])} %.")
    t = {x["stall_pct"]: x["write_MBps"] for x in s["sizing"].get("targets", [])}
    if t:
        parts.append(f"Keeping that under 1 % (5 %) at this size and cadence needs {num(t.get(1.0), 0)} "
                     f"({num(t.get(5.0), 0)}) MB/s of write bandwidth; the run saw "
                     f"{num(s['sizing'].get('observed_write_MBps'), 0)} MB/s while writing.")
    return " ".join(parts)


def _header(s: dict[str, Any]) -> list[str]:
    r, tr = s["run"], s["run"]["training"]
    src = ", ".join(f"{h}: {v}" for h, v in s["nfs"]["source"].items()) or "none"
    meta = (f"hosts {', '.join(r['hosts'])} · data {utc(r['start'])} → {utc(r['end'])} · training "
            f"{utc(tr['start'])} → {utc(tr['end'])} ({tr['source']}) · NFS source {src}")
    out = [f"<h1>Run {_e(r['id'])}</h1>", f'<p class="muted">{_e(meta)}</p>',
           f'<p class="finding">{_e(finding(s))}</p>']
    return out + [f'<div class="warn">{_e(w)}</div>' for w in s["warnings"]]


def _gpu(s: dict[str, Any], png: str | None) -> list[str]:
    g = s["gpu"]
    rows = [[r["host"], r["gpu"], r["samples"], num(r["mean_pct"]), num(r["p5_pct"]), num(r["p50_pct"])]
            for r in g["per_gpu"] if r.get("active", True)]
    rows.append([f"all used ({g.get('gpus', '—')})", "", g["samples"], num(g["util_mean_pct"]),
                 num(g["p5_pct"]), num(g["p50_pct"])])
    idle = g.get("idle_gpus") or []
    note = (f'<p class="muted">Averages cover the GPUs the run used (sm p95 ≥ 5 %); {len(idle)} idle GPU(s) '
            f"left out: {_e(', '.join(idle))}.</p>") if idle else ""
    return ["<h2>GPU utilisation</h2>",
            _figure(png, "GPU utilisation over time", "Figure 1. nvidia-smi dmon sm % per GPU (thin) and "
                    "their mean (bold), 1 s bins; shaded: checkpoint write bursts."),
            _table(["host", "GPU", "samples", "mean %", "p5 %", "p50 %"], rows), note]


def _nfs(s: dict[str, Any], png: str | None) -> list[str]:
    n, ds = s["nfs"], s["dataset"]
    rows = [[d, size(n[f"{d}_bytes"]), size(n[f"{d}_bytes_training"])]
            + [num(n[f"{d}_MBps"][k], 2) for k in ("mean", "p99", "peak")] for d in ("read", "write")]
    lat = n.get("latency_ms") or {}
    latency = [[op] + [num(lat.get(f"{op}_{k}"), 3) for k in ("rtt", "exe", "queue")]
               for op in ("read", "write", "commit")]
    check = [[size(ds["size_bytes"]), ds["epochs"] or "—", size(ds["read_bytes"]),
              num(ds["read_to_dataset_ratio"], 2), size(ds["expected_read_bytes_uncached"])]]
    return ["<h2>NFS throughput</h2>",
            _figure(png, "NFS throughput over time", "Figure 2. NFS read and write MB/s (10^6 B/s), best "
                    "source per host, summed over hosts; long runs as bucket maxima; shaded: checkpoints."),
            _table(["", "bytes (run)", "bytes (training)", "mean MB/s", "p99 MB/s", "peak MB/s"], rows),
            "<h3>Per-op latency (mountstats, ops-weighted over the run)</h3>",
            _table(["op", "RTT ms", "exe ms", "queue ms"], latency),
            "<h3>Data set check</h3>",
            _table(["data set", "epochs", "NFS read", "read ÷ data set", "expected if uncached"], check, 0)]


def _checkpoints(s: dict[str, Any]) -> list[str]:
    cks, sz = s["checkpoints"], s["sizing"]
    head = ["#", "start", "end", "s", "bytes", "MB/s mean", "MB/s peak", "GPU % during", "blocking s",
            "suppression s", "suppression loss s", "stall s", "trainer save", "source"]
    rows = [[c["index"], clock(c["start"]), clock(c["end"]), num(c["duration_s"], 0), size(c["bytes"]),
             num(c["write_MBps_mean"]), num(c["write_MBps_peak"]), num(c["gpu_util_during_pct"]),
             c["blocking_s"], c["suppression_s"], num(c["suppression_loss_s"]), num(c["stall_s"]),
             clock(c["log_save_ts"]), c["source"]] for c in cks]
    out = ["<h2>Checkpoints</h2>", _table(head, rows) if rows else '<p class="muted">none found</p>',
           f"<p>Stall fraction <b>{_pct(s['stall_fraction'])} %</b> = Σ(blocking + suppression loss) "
           f"{num(s['stall_s'])} s ÷ training wall time {num(s['run']['training']['wall_s'], 0)} s.</p>"]
    if sz.get("targets"):
        rows = [[f"{t['stall_pct']:g} %", num(t["write_MBps"], 0), num(t["vs_observed"], 2)]
                for t in sz["targets"]]
        out += ["<h3>Sizing</h3>", _table(["stall target", "write MB/s needed", "× observed"], rows),
                f'<p class="muted">checkpoint size {size(sz["checkpoint_bytes_mean"])}, cadence '
                f'{num(sz["cadence_s"], 0)} s, observed write bandwidth {num(sz["observed_write_MBps"], 0)} '
                "MB/s; needed = size ÷ (target × cadence).</p>"]
    return out


def _io(s: dict[str, Any], png: str | None) -> list[str]:
    out = ["<h2>I/O sizes</h2>",
           _figure(png, "I/O size histograms", "Figure 3. bpftrace @read_size / @write_size: bytes per "
                   "read/write call on files under the mount, log2 buckets, whole run.")]
    for host, io in s["io"].items():
        rows = [[m, c, size(v) if "bytes" in m else v] for m, comms in io["bytes_by_comm"].items()
                for c, v in comms.items()]
        if rows:
            out += [f"<h3>{_e(host)}: per process name</h3>", _table(["map", "comm", "total"], rows, left=2)]
    return out


def _flat(data: Any, prefix: str = "") -> list[list[str]]:
    """Nested manifest values as (dotted key, value) rows."""
    if isinstance(data, dict):
        return [row for k, v in data.items() for row in _flat(v, f"{prefix}{k}.")]
    return [[prefix.rstrip("."), "—" if data is None else str(data)]]


def _environment(s: dict[str, Any]) -> list[str]:
    versions, opts = s["manifest"].get("versions"), s["manifest"].get("mount_options")
    out = ["<h2>Environment</h2>",
           _table(["component", "version"], _flat(versions))
           if isinstance(versions, dict) else '<p class="muted">versions: not in manifest.json</p>']
    if isinstance(opts, dict):
        out.append("<h3>Mount options (manifest)</h3>" + _table(["key", "value"], _flat(opts)))
    else:
        out.append(f"<p>Mount options (manifest): <code>{_e(opts or '—')}</code></p>")
    for host, m in s["nfs"]["mounts"].items():
        opts = ",".join(f"{k}={v}" if v else k for k, v in m["opts"].items())
        out.append(f"<p>{_e(host)} effective (mountstats): <code>{_e(m['device'])} on {_e(m['mount'])} "
                   f"{_e(m['fstype'])} {_e(opts)}</code>, pNFS {_e(m['pnfs'] or '—')}, "
                   f"{m['xprt_count']} transport(s)</p>")
    if s["phases"]:
        rows = [[p["phase"], utc(p["start"]), utc(p["end"]), json.dumps(p["hosts"]),
                 "; ".join(p["failed_tasks"]) or "—"] for p in s["phases"]]
        head = ["phase", "start", "end", "hosts", "failed tasks"]
        out += ["<h3>Playbook phases</h3>", _table(head, rows, 5)]
    rows = [[p["source"], Path(p["path"]).name, p["lines"], p["records"],
             ", ".join(f"{k}: {v}" for k, v in p["skipped"].items()) or "—"] for p in s["parse"]]
    out += ["<h2>Parsing</h2>", _table(["source", "file", "lines", "records", "skipped"], rows, left=2)]
    return out


FORMULAS = """<h2>How the numbers are computed</h2><ul class="muted">
<li>Timeline: every sample on the controller's UTC clock (host offset from clock.json), binned to whole
seconds; bin b holds intervals ending in [b, b+1); per-interval counts summed, rates and gauges averaged.</li>
<li>GPU utilisation = Σ of every GPU's per-second <code>sm</code> % in the training window ÷ number of those
samples (total/total); percentiles over the same samples.</li>
<li>NFS bytes = Σ Δ<code>bytes: serverreadbytes/serverwritebytes</code> of consecutive mountstats snapshots
(else bpftrace syscall bytes, else nfsiostat kB/s × interval); mean MB/s = bytes in the training window ÷ its
wall time ÷ 10^6; p99 and peak over 1 s rates.</li>
<li>Checkpoint = a write burst: seconds above max(4 MiB/s, 10 % of the peak), extended while above
max(512 KiB/s, 2 % of peak, 4 × median), merged across gaps ≤ 3 s; bytes = Σ over it.</li>
<li>Baseline = median GPU % over training outside bursts. Blocking = longest run of seconds with GPU %
&lt; 50 % of baseline touching the burst; suppression = the following seconds below
baseline − max(3, 2·MAD); suppression loss = Σ (baseline − u)/baseline.</li>
<li>Stall fraction = Σ(blocking + suppression loss) ÷ training wall time. Write bandwidth needed for a
target f = mean checkpoint bytes ÷ (f × cadence), cadence = mean gap between checkpoint starts.</li>
<li>Full definitions: docs/report.md.</li></ul>"""


def render(a: Analysis) -> str:
    """The report page for one analysed run."""
    s = a.summary
    t_ref = s["run"]["training"]["start"] or 0
    gpu_png = figures.gpu_figure(a.arrays, s["checkpoints"], t_ref) if a.arrays.gpu_rows else None
    nfs_png = figures.nfs_figure(a.arrays, s["checkpoints"], t_ref) if a.arrays.nfs_source else None
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
             f"<title>labctl report {_e(s['run']['id'])}</title>"
             f'<link rel="icon" href="data:,"><style>{CSS}</style></head><body>']
    parts += _header(s) + _gpu(s, gpu_png) + _nfs(s, nfs_png) + _checkpoints(s)
    parts += storage.section(a.run.run_dir, s, t_ref)
    parts += _io(s, figures.hist_figure(s["io"])) + _environment(s) + [FORMULAS]
    parts.append("<h2>summary.json</h2><details><summary>show</summary><pre>"
                 + _e(json.dumps(s, indent=1, default=str)) + "</pre></details></body></html>")
    return "\n".join(parts)


def write_report(a: Analysis, path: Path) -> None:
    """Write report.html atomically."""
    write_text_atomic(path, render(a))
