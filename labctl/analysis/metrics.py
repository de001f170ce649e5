"""summary.json: GPU utilisation, NFS traffic, the data-set check, checkpoints, stall fraction and sizing.

Every formula is in docs/report.md; aggregations are total/total (never a mean of rates).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from labctl.analysis.arrays import RunArrays
from labctl.analysis.bundle import RunData
from labctl.analysis.checkpoints import Burst, baseline, detect_bursts, impact
from labctl.analysis.series import SeriesKey
from labctl.analysis.timeline import Binned

SCHEMA = "labctl.summary/1"
MB = 1e6
STALL_TARGETS = (0.01, 0.05)


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)


def _pct(vals: np.ndarray, q: float) -> float | None:
    return _r(float(np.percentile(vals, q))) if vals.size else None


def _stats_MBps(rate: np.ndarray, total_bytes: float, wall: float) -> dict[str, float | None]:
    v = rate[~np.isnan(rate)] / MB
    return {"mean": _r(total_bytes / wall / MB) if wall > 0 else None, "p99": _pct(v, 99),
            "peak": _r(float(v.max())) if v.size else None}


def summarize(run: RunData, binned: dict[SeriesKey, Binned], a: RunArrays) -> dict[str, Any]:
    """The summary.json document for a parsed run."""
    g, r, w, nfs_src = a.grid, a.read, a.write, a.nfs_source
    totals = {d: sum((host[f"{d}_bytes"] for host in a.per_host), 0.0) for d in ("read", "write")}
    train, train_src = _training_window(run, a)
    wall = float(train.stop - train.start)
    warnings = list(run.warnings)
    bursts = detect_bursts(w)
    base, mad = baseline(a.u, train, bursts)
    checkpoints = _checkpoints(run, a, bursts, base, mad, train, warnings)
    stall_s = sum(ck["blocking_s"] + ck["suppression_loss_s"] for ck in checkpoints)
    in_train = {d: float(np.nansum(x[train])) for d, x in (("read", r), ("write", w))}
    summary: dict[str, Any] = {
        "schema": SCHEMA,
        "run": {"dir": str(run.run_dir), "id": run.manifest.run_id or run.run_dir.name,
                "hosts": run.hosts,
                "start": g.t0 if binned else None, "end": g.t0 + g.n if binned else None,
                "training": {"start": g.t0 + train.start, "end": g.t0 + train.stop, "wall_s": wall,
                             "source": train_src}},
        "gpu": _gpu(a, train, base),
        "nfs": {"source": nfs_src, "read_bytes": totals["read"], "write_bytes": totals["write"],
                "read_bytes_training": in_train["read"], "write_bytes_training": in_train["write"],
                "read_MBps": _stats_MBps(r[train], in_train["read"], wall),
                "write_MBps": _stats_MBps(w[train], in_train["write"], wall),
                "per_host": a.per_host, "mounts": {h: m.to_dict() for h, m in run.mounts.items()},
                "latency_ms": {f"{op}_{k}": _weighted(run, binned, f"nfs.{op}.{k}_ms", f"nfs.{op}.ops_rate")
                               for op in ("read", "write", "commit") for k in ("rtt", "exe", "queue")},
                "xprt_sends_per_s": _weighted(run, binned, "nfs.xprt.sends_rate", None)},
        "dataset": {**_dataset(run, totals["read"]), "basis": sorted(set(nfs_src.values()))},
        "checkpoints": checkpoints,
        "stall_s": _r(stall_s),
        "stall_fraction": _r(stall_s / wall, 5) if wall > 0 and a.gpu_rows else None,
        "sizing": _sizing(checkpoints, wall),
        "io": _io(run),
        "trainer": {h: {"epochs": t.epochs, "saves": t.saves, "events": t.events[:50]}
                    for h, t in run.train.items()},
        "phases": run.phases,
        "manifest": {"versions": run.manifest.versions, "mount_options": run.manifest.mount_options,
                     "experiment": _experiment(run).get("name")},
        "parse": [p.to_dict() for p in run.parse],
    }
    if a.outliers:
        warnings.append(f"{a.outliers} sample(s) with timestamps far outside the run were left out")
    if not a.gpu_rows:
        warnings.append("no GPU utilisation data (dmon.log): GPU and stall metrics are empty")
    if not nfs_src:
        warnings.append("no NFS data (mountstats, bpftrace or nfsiostat): NFS and checkpoint metrics "
                        "are empty")
    if summary["dataset"]["caching_warning"]:
        warnings.append(summary["dataset"]["caching_warning"])
    summary["warnings"] = warnings
    return summary


def _weighted(run: RunData, binned: dict[SeriesKey, Binned], metric: str, weight: str | None) -> float | None:
    """Mean of a mountstats metric over all hosts and intervals, weighted by `weight` (ops/s) if given: a
    latency is Σ(avg per interval × ops in it) ÷ Σ ops (total/total)."""
    num = den = 0.0
    for host in run.hosts:
        m = binned.get((host, -1, "mountstats", metric))
        wb = binned.get((host, -1, "mountstats", weight)) if weight else None
        if m is None or (weight and wb is None):
            continue
        w = np.ones(m.secs.size) if wb is None else _at(wb, m.secs)
        num, den = num + float(np.sum(m.values * w)), den + float(np.sum(w))
    return _r(num / den) if den else None


def _at(b: Binned, secs: np.ndarray) -> np.ndarray:
    """`b`'s values at `secs` (0 where it has none); both sorted."""
    if b.secs.size == 0:
        return np.zeros(secs.size)
    i = np.minimum(np.searchsorted(b.secs, secs), b.secs.size - 1)
    return np.where(b.secs[i] == secs, b.values[i], 0.0)


def _training_window(run: RunData, a: RunArrays) -> tuple[slice, str]:
    starts = [t.train_start for t in run.train.values() if t.train_start is not None]
    ends = [t.train_end for t in run.train.values() if t.train_end is not None]
    if starts and ends and max(ends) > min(starts):
        return slice(a.grid.index(min(starts)), a.grid.index(max(ends)) + 1), "trainer_log"
    valid = a.u[~np.isnan(a.u)]
    if valid.size:
        busy = np.flatnonzero(np.nan_to_num(a.u) >= 0.5 * float(np.percentile(valid, 95)))
        if busy.size:
            return slice(int(busy[0]), int(busy[-1]) + 1), "gpu"
    return slice(0, a.grid.n), "data"


def _dist(v: np.ndarray) -> dict[str, Any]:
    return {"samples": int(v.size), "mean_pct": _r(v.mean()) if v.size else None,
            "p5_pct": _pct(v, 5), "p50_pct": _pct(v, 50)}


def _gpu(a: RunArrays, train: slice, base: float) -> dict[str, Any]:
    """Utilisation over the GPUs the run used (idle ones are listed, not averaged in)."""
    per_gpu = []
    hosts: dict[str, list[np.ndarray]] = {}
    for (host, gpu), arr in sorted(a.all_gpu_rows.items()):
        v = arr[train]
        v = v[~np.isnan(v)]
        used = (host, gpu) in a.gpu_rows
        if used:
            hosts.setdefault(host, []).append(v)
        per_gpu.append({"host": host, "gpu": gpu, "active": used, **_dist(v)})
    per_host = [{"host": host, "gpus": len(vs), **_dist(np.concatenate(vs))} for host, vs in hosts.items()]
    v = np.concatenate([x for vs in hosts.values() for x in vs] or [np.zeros(0)])
    return {"metric": "gpu.sm", "util_mean_pct": _r(v.mean()) if v.size else None, "samples": int(v.size),
            "baseline_pct": _r(base), "p5_pct": _pct(v, 5), "p50_pct": _pct(v, 50), "gpus": len(a.gpu_rows),
            "idle_gpus": [f"{x['host']}/{x['gpu']}" for x in per_gpu if not x["active"]],
            "per_host": per_host, "per_gpu": per_gpu}


def _checkpoints(run: RunData, a: RunArrays, bursts: list[Burst], base: float, mad: float, train: slice,
                 warnings: list[str]) -> list[dict[str, Any]]:
    t0, u, w = a.grid.t0, a.u, a.write
    saves = sorted((s for t in run.train.values() for s in t.saves), key=lambda s: s["ts"])
    opens = [o for b in run.bpf.values() for o in b.opens]
    out: list[dict[str, Any]] = []
    spans = [(t0 + b.first - 1, t0 + b.last) for b in bursts]
    owner: dict[int, int] = {}  # save index -> burst index: the nearest burst whose window holds it
    for i, sv in enumerate(saves):
        near = [(abs(sv["ts"] - a), k) for k, (a, e) in enumerate(spans) if a - 30 <= sv["ts"] <= e + 5]
        if near:
            owner[i] = min(near)[1]
    for k, b in enumerate(bursts):
        limit = bursts[k + 1].first - 2 if k + 1 < len(bursts) else a.grid.n
        im = impact(u, b, base, mad, limit, train)
        start, end = t0 + b.first - 1, t0 + b.last
        dur = b.last - b.first + 1
        mine = [saves[i]["ts"] for i, o in owner.items() if o == k]
        out.append({
            "index": k + 1, "start": start, "end": end, "duration_s": dur, "bytes": b.bytes,
            "write_MBps_mean": _r(b.bytes / dur / MB),
            "write_MBps_peak": _r(float(np.nanmax(w[b.first:b.last + 1])) / MB),
            "gpu_util_during_pct": _r(im.util_during), "blocking_s": im.blocking_s,
            "suppression_s": im.suppression_s, "suppression_loss_s": _r(im.suppression_loss_s),
            "stall_s": _r(im.blocking_s + im.suppression_loss_s), "source": "nfs_write_burst",
            "in_training": train.start <= b.first < train.stop,
            "log_save_ts": min(mine) if mine else None, "log_saves": len(mine),
            "paths": sorted({str(o["path"]) for o in opens if start - 5 <= float(o["ts"]) <= end + 5}),
        })
    for s in (s for i, s in enumerate(saves) if i not in owner):
        if bursts:
            warnings.append(f"trainer logged a checkpoint save at {s['ts']:.0f} with no NFS write burst")
        else:
            end = s["next_ts"] or s["ts"]
            out.append({"index": len(out) + 1, "start": s["ts"], "end": end, "duration_s": _r(end - s["ts"]),
                        "bytes": None, "write_MBps_mean": None, "write_MBps_peak": None,
                        "gpu_util_during_pct": None, "blocking_s": 0, "suppression_s": 0,
                        "suppression_loss_s": 0.0, "stall_s": 0.0, "source": "trainer_log",
                        "log_save_ts": s["ts"], "paths": []})
    unmatched = [k + 1 for k, ck in enumerate(out[:len(bursts)]) if not ck["log_saves"]]
    if saves and unmatched:
        warnings.append(f"NFS write burst(s) {unmatched} have no checkpoint save in the trainer log")
    return out


def _sizing(cks: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    sized = [c for c in cks if c["bytes"]]
    if not sized:
        return {"checkpoint_bytes_mean": None, "cadence_s": None, "targets": []}
    size = sum(c["bytes"] for c in sized) / len(sized)
    starts = [c["start"] for c in sized]
    cadence = (starts[-1] - starts[0]) / (len(starts) - 1) if len(starts) > 1 else wall / len(sized)
    observed = sum(c["bytes"] for c in sized) / sum(c["duration_s"] for c in sized)
    targets = []
    for f in STALL_TARGETS:
        need = size / (f * cadence) if cadence > 0 else None
        targets.append({"stall_pct": f * 100, "write_MBps": _r(need / MB if need else None),
                        "vs_observed": _r(need / observed if need and observed else None)})
    return {"checkpoint_bytes_mean": size, "cadence_s": _r(cadence), "observed_write_MBps": _r(observed / MB),
            "model_stall_pct_at_observed": _r(100 * size / observed / cadence) if cadence > 0 else None,
            "targets": targets}


def _amount(value: Any) -> float | int | None:
    """A manifest count or size if it is a finite positive number (NaN, Infinity, 1e308, bools: None)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return value if ok and math.isfinite(value) and 0 < value < 1e18 else None


def _section(doc: Any, key: str) -> dict[str, Any]:
    """`doc[key]` when both are JSON objects, else {} (a damaged manifest reads as one that says nothing)."""
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, dict) else {}


def _experiment(run: RunData) -> dict[str, Any]:
    """The experiment as the manifest recorded it ({} when it did not)."""
    return run.manifest.experiment if isinstance(run.manifest.experiment, dict) else {}


def _fact(run: RunData, key: str) -> list[float | int]:
    """A number the hosts reported at the start of the run (manifest `hosts[].facts`), where usable."""
    values = [_amount(_section(run.host_record(h), "facts").get(key)) for h in run.hosts]
    return [v for v in values if v is not None]


def _dataset(run: RunData, read_bytes: float) -> dict[str, Any]:
    """The data set's size (as the hosts found it, else the emulator's synthetic one), the epochs (the
    trainer log's, else the experiment's), and whether the NFS reads can be storage reads at all."""
    experiment = _experiment(run)
    sizes = _fact(run, "dataset_bytes")
    emulated = experiment.get("trainer") == "emulate"
    synthetic = _amount(_section(experiment, "emulate").get("dataset_bytes")) if emulated else None
    size = max(sizes) if sizes else synthetic
    epochs = next((t.epochs for t in run.train.values() if t.epochs), None)
    epochs = _amount(epochs or _section(experiment, "training").get("epochs"))
    hosts = max(len(run.hosts), 1)
    out: dict[str, Any] = {"size_bytes": size, "epochs": epochs, "read_bytes": read_bytes,
                           "read_to_dataset_ratio": None, "expected_read_bytes_uncached": None,
                           "caching_warning": None}
    if size is None:
        return out
    ratio = read_bytes / size
    out["read_to_dataset_ratio"] = _r(ratio)
    if epochs is not None:
        expected = size * epochs * hosts
        out["expected_read_bytes_uncached"] = expected
        if read_bytes < 0.9 * expected:
            out["caching_warning"] = (
                f"NFS reads are {ratio:.2f}× the data set over {epochs} epochs on {hosts} host(s) (uncached: "
                f"{expected / size:.0f}×): the data set is served from the client page cache after the first "
                "read, so read throughput here does not measure storage read bandwidth")
    mems = _fact(run, "mem_total_bytes")
    if mems and size <= min(mems) and not out["caching_warning"]:
        out["caching_warning"] = ("the data set fits in host memory: later epochs may be served from "
                                  "the page cache")
    return out


def _io(run: RunData) -> dict[str, Any]:
    return {host: {
        "bytes_by_comm": {m: dict(c.most_common(20)) for m, c in res.by_comm.items() if c},
        "hist": {m: [{"min": k[0], "max": k[1], "count": n} for k, n in
                     sorted(h.items(), key=lambda kv: (kv[0][1] is None, kv[0][1] or 0))]
                 for m, h in res.hists.items() if h},
        "write_opens": res.opens[:200], "lost_events": res.lost_events, "probes": res.probes,
    } for host, res in run.bpf.items()}
