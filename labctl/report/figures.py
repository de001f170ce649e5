"""The report's figures as inline PNG (matplotlib, no pyplot state, Agg canvas)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from labctl.analysis.arrays import RunArrays
from labctl.analysis.metrics import MB

MAX_POINTS = 2000
READ_C, WRITE_C, GPU_C, CKPT_C = "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"


def png_b64(fig: Figure) -> str:
    """A figure as a base64 PNG string."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _reduce(x: np.ndarray, y: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_POINTS points: bucket mean (or max, to keep bursts visible); NaN buckets stay NaN."""
    if y.size <= MAX_POINTS:
        return x, y
    k = int(np.ceil(y.size / MAX_POINTS))
    pad = (-y.size) % k
    yy = np.r_[y, np.full(pad, np.nan)].reshape(-1, k)
    with np.errstate(all="ignore"):
        valid = ~np.all(np.isnan(yy), axis=1)
        out = np.full(yy.shape[0], np.nan)
        agg = np.nanmax if how == "max" else np.nanmean
        out[valid] = agg(yy[valid], axis=1)
    return x[::k][: out.size], out


def _minutes(a: RunArrays, t_ref: float) -> np.ndarray:
    """Bin b describes the interval (b−1, b]: plot it at its middle, so checkpoint spans line up."""
    return (a.grid.secs() - 0.5 - t_ref) / 60.0


def _mark_checkpoints(ax: Any, checkpoints: list[dict[str, Any]], t_ref: float, label: bool) -> None:
    for ck in checkpoints:
        x0, x1 = (ck["start"] - t_ref) / 60.0, (ck["end"] - t_ref) / 60.0
        ax.axvspan(x0, max(x1, x0 + 1 / 60), color=CKPT_C, alpha=0.25, lw=0)
        if label:
            ax.annotate(f"C{ck['index']}", (x0, 1.0), xycoords=("data", "axes fraction"), fontsize=8,
                        color=CKPT_C, va="bottom", ha="left")


def gpu_figure(a: RunArrays, checkpoints: list[dict[str, Any]], t_ref: float) -> str:
    """GPU utilisation (`sm` %) over time, per GPU and the mean (the reference lab's Figure 2)."""
    fig = Figure(figsize=(10, 3.6))
    ax = fig.add_subplot()
    x = _minutes(a, t_ref)
    for (host, gpu), row in sorted(a.gpu_rows.items())[:16]:
        xs, ys = _reduce(x, row, "mean")
        ax.plot(xs, ys, lw=0.6, alpha=0.45, label=f"{host}/{gpu}")
    xs, ys = _reduce(x, a.u, "mean")
    ax.plot(xs, ys, lw=1.6, color=GPU_C, label="mean")
    _mark_checkpoints(ax, checkpoints, t_ref, True)
    ax.set_ylim(0, 105)
    ax.set_ylabel("GPU utilisation (sm %)")
    ax.set_xlabel("minutes since training start")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=7, ncol=6)
    return png_b64(fig)


def nfs_figure(a: RunArrays, checkpoints: list[dict[str, Any]], t_ref: float) -> str:
    """NFS read and write throughput (MB/s) with checkpoint markers (the reference lab's Figure 3)."""
    fig = Figure(figsize=(10, 3.6))
    ax = fig.add_subplot()
    x = _minutes(a, t_ref)
    for arr, color, name in ((a.read, READ_C, "read"), (a.write, WRITE_C, "write")):
        xs, ys = _reduce(x, arr / MB, "max")
        ax.plot(xs, ys, lw=1.0, color=color, label=f"{name} MB/s")
    _mark_checkpoints(ax, checkpoints, t_ref, True)
    ax.set_ylabel("NFS throughput (MB/s)")
    ax.set_xlabel("minutes since training start")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return png_b64(fig)


def _bucket_label(lo: Any, hi: Any) -> str:
    def fmt(v: int) -> str:
        for unit, size in (("G", 2**30), ("M", 2**20), ("K", 2**10)):
            if v >= size and v % size == 0:
                return f"{v // size}{unit}"
        return str(v)

    if lo is None:
        return f"≤{hi}"
    return fmt(int(lo))


def hist_figure(io: dict[str, Any]) -> str | None:
    """Bytes-per-call histograms of reads and writes under the mount (bpftrace @read_size / @write_size)."""
    merged: dict[str, dict[tuple[Any, Any], int]] = {}
    for host_io in io.values():
        for name, buckets in host_io.get("hist", {}).items():
            m = merged.setdefault(name, {})
            for b in buckets:
                key = (b["min"], b["max"])
                m[key] = m.get(key, 0) + int(b["count"])
    if not merged:
        return None
    fig = Figure(figsize=(10, 3.2))
    names = [n for n in ("read_size", "write_size") if n in merged]
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        items = sorted(merged[name].items(), key=lambda kv: (kv[0][0] is not None, kv[0][0] or 0))
        labels = [_bucket_label(*k) for k, _ in items]
        ax.bar(range(len(items)), [v for _, v in items], color=READ_C if name == "read_size" else WRITE_C)
        ax.set_xticks(range(len(items)), labels, rotation=45, fontsize=7)
        ax.set_yscale("log")
        ax.set_title(f"{name.replace('_', ' ')} (bytes per call, log2 buckets)", fontsize=9)
        ax.set_ylabel("calls")
    return png_b64(fig)
