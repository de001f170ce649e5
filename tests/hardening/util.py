"""Helpers shared by the hardening tests."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NUMERIC_ID = re.compile(r"/(\d+)(?=/|$)")
MUTATING = ("POST", "PATCH", "DELETE")


def quiet() -> Console:
    """A console that prints nowhere."""
    return Console(file=io.StringIO())


def glob_path(path: str) -> str:
    """A request path with generated ids (uuids, policy ids) as `*`: a fault glob for "that call"."""
    return NUMERIC_ID.sub("/*", UUID.sub("*", path))


def distinct_calls(requests: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Distinct (method, path glob) of a run, in the order first seen."""
    return list(dict.fromkeys((r["method"], glob_path(r["path"])) for r in requests))


def fired(sim: Any) -> list[dict[str, Any]]:
    """The injected faults that fired."""
    return [f for f in sim.app.faults.list() if f["fired"]]


def ledger_of(state_dir: Path) -> dict[str, Any]:
    """The ledger as JSON; fails the test when it is not a complete labctl ledger."""
    data = json.loads((state_dir / "ledger.json").read_text(encoding="utf-8"))
    assert data["version"] == 1 and isinstance(data["objects"], dict), data
    return data


def clean_output(out: str, err: str) -> None:
    """No traceback and no internal error: every failure is a LabctlError with a message."""
    text = out + err
    assert "Traceback" not in text, text
    assert "internal error" not in text, text


def wait_for(predicate: Callable[[], object], timeout: float = 120.0) -> None:
    """Poll `predicate` every 0.1 s until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.1)


def emulated_experiment(path: Path, name: str, *, epochs: int, steps: int, compute_s: float,
                        phase_s: float = 0.5, data_bytes: int = 10**6, read_per_step: int = 65536) -> Path:
    """An experiment file for the emulated trainer: `steps` of `compute_s` per epoch, `data_bytes` for the
    data set and each checkpoint, startup and validation of `phase_s`; dmon every second, no bpftrace."""
    path.write_text(json.dumps({
        "name": name, "trainer": "emulate", "training": {"epochs": epochs},
        "monitors": {"dmon_interval_s": 1, "lead_s": 1, "tail_s": 1, "bpftrace": False},
        "emulate": {"steps_per_epoch": steps, "step_compute_s": compute_s, "startup_s": phase_s,
                    "validation_s": phase_s, "checkpoint_bytes": data_bytes, "dataset_bytes": data_bytes,
                    "read_bytes_per_step": read_per_step},
    }), encoding="utf-8")
    return path
