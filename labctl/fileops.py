"""File and process helpers every layer may use, the host agent and labctl's Ansible modules included (stdlib
only: shipped with the agent, and to the modules as playbooks/module_utils/labctl_fileops.py, a link)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def write_json_atomic(path: Path, doc: Any, *, indent: int | None = 1, sort_keys: bool = False,
                      mode: int = 0o644, durable: bool = False) -> None:
    """Write `doc` as JSON (one line when `indent` is None) to `path` atomically: see write_text_atomic."""
    text = json.dumps(doc, indent=indent, sort_keys=sort_keys, default=str) + "\n"
    write_text_atomic(path, text, mode=mode, durable=durable)


def write_text_atomic(path: Path, text: str | bytes, *, mode: int = 0o644, durable: bool = False) -> None:
    """Write `text` (a str as UTF-8) to `path` through a temporary file (created with `mode`) and a rename:
    readers see the old file or the new one, never a part of either. `durable`: fsync the file and its
    directory, so a crash right after cannot lose it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8") if isinstance(text, str) else text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def pid_alive(pid: int | None) -> bool:
    """Whether `pid` names a live process (a zombie is not alive; another user's process is)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
