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
