"""The runs directory on the controller: new run ids, finding a run's bundle (`runs/<run-id>/`), and
reading and writing its manifest.json (through `labctl.formats.bundle.Manifest`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from labctl.errors import StateError
from labctl.formats.bundle import Manifest

MANIFEST = "manifest.json"


def new_run_id(name: str, runs_root: Path) -> str:
    """`<UTC time>-<experiment name>`, unique under runs_root."""
    base = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{name}"
    run_id, n = base, 1
    while (runs_root / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def find_run(ref: str, runs_root: Path) -> Path:
    """A run directory from a path or a run id (under runs_root).

    Raises:
        StateError: no such run, or it has no manifest.json.
    """
    for candidate in (Path(ref), runs_root / ref):
        if (candidate / MANIFEST).is_file():
            return candidate.resolve()
    raise StateError(
        f"no run bundle {ref!r} (looked for {ref}/{MANIFEST} and {runs_root / ref}/{MANIFEST})",
        fix="pass the run directory printed by `labctl run`, or its run id with --runs-dir",
    )


def load_manifest(bundle: Path) -> dict[str, Any]:
    """manifest.json as a dict of its schema's keys; StateError naming the file when it is unreadable, of
    an unknown schema version, or has keys that version does not know."""
    return Manifest.load(bundle / MANIFEST).to_dict()


def save_manifest(bundle: Path, manifest: dict[str, Any]) -> None:
    """Check `manifest` against the schema, then write manifest.json atomically."""
    Manifest.from_dict(manifest, where=str(bundle / MANIFEST)).save(bundle / MANIFEST)
