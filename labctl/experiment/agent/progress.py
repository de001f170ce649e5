"""What the agent reads of the trainer's log and of dmon while training: progress and GPU utilisation."""

from __future__ import annotations

import os
import re
from pathlib import Path

BAR = re.compile(
    r"(?P<desc>train loss(?:: (?P<loss>[0-9.]+|nan))?|validation progress):\s+(?P<pct>\d+)%\|[^|]*\|"
    r"\s*(?P<n>\d+)/(?P<total>\d+)"
)
EPOCH = re.compile(r"Training Epoch: (\d+) / (\d+)")


def tail(path: Path, size: int = 65536) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - size))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def progress(train_log: Path) -> dict:
    """Epoch, step/total and loss from the end of an LLM Studio log."""
    text = tail(train_log)
    out: dict = {}
    epochs = EPOCH.findall(text)
    if epochs:
        out["epoch"], out["epochs"] = int(epochs[-1][0]), int(epochs[-1][1])
    for m in BAR.finditer(text):
        if m["desc"].startswith("train loss"):
            out["step"], out["total"] = int(m["n"]), int(m["total"])
            if m["loss"]:
                out["loss"] = float(m["loss"])
            out["phase"] = "train"
        else:
            out["phase"] = "validation"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and "Saving" in lines[-1] and "checkpoint" in lines[-1]:
        out["phase"] = "checkpoint"
    return out


def last_gpu_pct(dmon_log: Path, gpus: int | None = None) -> float | None:
    """Mean `sm` % over the trainer's GPUs (index < gpus) of the last complete dmon sample."""
    cols: list[str] = []
    rows: list[list[str]] = []
    text = tail(dmon_log, 16384)
    lines = text.splitlines()
    if not any(ln.startswith("#") for ln in lines):  # dmon prints its header once: take it from the top
        try:
            with open(dmon_log, encoding="utf-8", errors="replace") as fh:
                head = [ln for ln in fh.read(4096).splitlines() if ln.startswith("#")]
        except OSError:
            head = []
        lines = head + lines[1:]  # the first tail line may be cut
    if lines and not text.endswith("\n"):  # a partial last line (still being written, or cut by ^C)
        lines.pop()
    for line in lines:
        if line.startswith("#"):
            names = line.lstrip("#").split()
            if "sm" in names:
                cols = names
            continue
        parts = line.split()
        if cols and len(parts) == len(cols):
            rows.append(parts)
    if not rows or "sm" not in cols:
        return None
    key = [cols.index(c) for c in ("Date", "Time") if c in cols]
    last = [r for r in rows if [r[i] for i in key] == [rows[-1][i] for i in key]] if key else rows[-1:]
    if gpus and "gpu" in cols:
        last = [r for r in last if r[cols.index("gpu")].isdigit() and int(r[cols.index("gpu")]) < gpus]
    sm = cols.index("sm")
    values = [float(r[sm]) for r in last if r[sm].replace(".", "", 1).isdigit()]
    return round(sum(values) / len(values), 1) if values else None
