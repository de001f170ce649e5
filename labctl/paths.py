"""Every on-disk location labctl uses, in one place."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_INVENTORY = Path("inventories/lab")


def inventory_dir(cli_value: str | os.PathLike[str] | None) -> Path:
    """The inventory directory: `-i`, else `$LABCTL_INVENTORY`, else ./inventories/lab."""
    if cli_value:
        return Path(cli_value)
    env = os.environ.get("LABCTL_INVENTORY")
    return Path(env) if env else DEFAULT_INVENTORY


def state_dir(inventory: Path) -> Path:
    """Where labctl keeps its ledger, logs and runner artifacts for one lab.

    `$LABCTL_STATE_DIR` wins; otherwise `.labctl/` next to the inventory directory.
    """
    env = os.environ.get("LABCTL_STATE_DIR")
    if env:
        return Path(env)
    return inventory.resolve().parent / ".labctl" / inventory.resolve().name


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) with owner-only permissions and return it."""
    created = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for parent in created:  # mkdir gives missing parents the default mode
        parent.chmod(0o700)
    path.chmod(0o700)
    return path


def repo_data(*parts: str) -> Path:
    """A file shipped with labctl (playbooks, templates): the repository copy, else the packaged one."""
    root = Path(__file__).resolve().parent.parent
    candidate = root.joinpath(*parts)
    if candidate.exists():
        return candidate
    return Path(__file__).resolve().parent.joinpath("data", *parts)
