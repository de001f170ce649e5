"""Every on-disk location labctl uses, in one place."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from labctl.errors import StateError

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
    """Create `path` (and missing parents) owner-only (0700) and return it.

    A directory that already exists is never chmodded (it may be shared, e.g. a `LABCTL_STATE_DIR` of mode
    1777); one that others may write to without the sticky bit is refused.

    Raises:
        StateError: `path` is not a directory, or others can replace what labctl writes in it.
    """
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for parent in reversed(missing):
        try:
            parent.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile by someone else: not ours to chmod
            continue
        parent.chmod(0o700)  # whatever the umask
    if not path.is_dir():
        raise StateError("is not a directory", where=str(path), fix="point LABCTL_STATE_DIR at a directory")
    mode = path.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and not mode & stat.S_ISVTX:
        raise StateError(
            f"other users can write to this directory (mode {stat.S_IMODE(mode):04o}) and replace what "
            "labctl keeps there; labctl leaves its permissions alone",
            where=str(path),
            fix="chmod go-w (or +t) it yourself, or point LABCTL_STATE_DIR at a directory of your own",
        )
    return path


def open_append_own(path: Path) -> int:
    """Open `path` for appending (created 0600), never through a symlink and only if it is a regular file
    of this user with no other links; returns the file descriptor.

    Raises:
        OSError: a symlink (ELOOP), or a file labctl must not write to (EPERM).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink != 1:
        os.close(fd)
        raise PermissionError(errno.EPERM, "not a private regular file of this user", str(path))
    os.fchmod(fd, 0o600)
    return fd


def repo_data(*parts: str) -> Path:
    """A file shipped with labctl (playbooks, templates): the repository copy, else the packaged one."""
    root = Path(__file__).resolve().parent.parent
    candidate = root.joinpath(*parts)
    if candidate.exists():
        return candidate
    return Path(__file__).resolve().parent.joinpath("data", *parts)
