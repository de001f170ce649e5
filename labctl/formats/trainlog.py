"""H2O LLM Studio's `logs.log` lines (`%(asctime)s - %(levelname)s: %(message)s`, tqdm bars via the logger),
per research/llmstudio.md."""

from __future__ import annotations

import re

LOG_FORMAT = "%(asctime)s - %(levelname)s: %(message)s"  # LLM Studio's logging.Formatter
PREFIX = re.compile(r"^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d),(\d{3}) - (?:PID \d+ - )?([A-Z]+): (.*)$")
EPOCH = re.compile(r"Training Epoch: (\d+) / (\d+)")
BAR = re.compile(r"(?P<desc>train loss(?:: (?P<loss>[0-9.]+|nan))?|validation progress):\s+"
                 r"(?P<pct>\d+)%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)")
SAVE = re.compile(r"Saving (?:last |best )?model checkpoint(?::| to)?\s*(?P<rest>.*)$")
EVENTS = (("Evaluation step:", "evaluation"), ("Starting validation inference", "validation"),
          ("Mean validation loss:", "validation_loss"), ("Exception occurred during", "exception"),
          ("Loaded ", "model_loaded"), ("GPU Out-of-Memory", "oom"), ("NaN caught in loss", "nan_loss"))


def format_line(stamp: tuple[int, int, int, int, int, int, int], level: str, message: str) -> str:
    """One log line: `stamp` = (year, month, day, hour, minute, second, millisecond)."""
    y, mo, d, hh, mi, ss, ms = stamp
    return f"{y:04d}-{mo:02d}-{d:02d} {hh:02d}:{mi:02d}:{ss:02d},{ms:03d} - {level}: {message}"


def progress(text: str) -> dict:
    """Epoch, step/total, loss and phase (train, validation, checkpoint) from the end of a log."""
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
