"""The run bundle on the controller: `runs/<run-id>/` with manifest.json and raw/<host>/…"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from labctl.errors import StateError

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
    try:
        return json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read {bundle / MANIFEST}: {exc}") from exc


def save_manifest(bundle: Path, manifest: dict[str, Any]) -> None:
    """Atomic write of manifest.json."""
    path = bundle / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
