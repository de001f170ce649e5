"""What the agent reads of the trainer's log and of dmon while training: progress and GPU utilisation."""

from __future__ import annotations

import os
from pathlib import Path

from labctl.formats.dmon import last_sample_sm
from labctl.formats.trainlog import progress as log_progress


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
    return log_progress(tail(train_log))


def last_gpu_pct(dmon_log: Path, gpus: int | None = None) -> float | None:
    """Mean `sm` % over the trainer's GPUs (index < gpus) of the last complete dmon sample."""
    text = tail(dmon_log, 16384)
    lines = text.splitlines()
    if not any(ln.startswith("#") for ln in lines):  # dmon prints its header once: take it from the top
        try:
            with open(dmon_log, encoding="utf-8", errors="replace") as fh:
                head = [ln for ln in fh.read(4096).splitlines() if ln.startswith("#")]
        except OSError:
            head = []
        lines = head + lines[1:]  # the first tail line may be cut
    return last_sample_sm(lines, text.endswith("\n"), gpus)
