"""The ledger: what labctl created or changed on the lab, with the prior values, so teardown can undo
exactly that.

One versioned JSON file in the lab's state dir, written atomically (tmp + fsync + rename, mode 0600) and
guarded by an fcntl lock so two labctl runs never interleave. Each mutation is recorded twice: the intent
before the REST call (so a crash leaves a trace) and the result after it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labctl.errors import StateError
from labctl.fileops import write_json_atomic
from labctl.paths import private_dir

LEDGER_VERSION = 1
LEDGER_FILE = "ledger.json"
LOCK_FILE = "ledger.lock"

# entry["state"] values
INTENT = "intent"  # the mutation was about to be sent; its outcome is unknown
DONE = "done"  # the mutation succeeded; the object is labctl's (created) or carries labctl's changes
REMOVING = "removing"  # teardown was about to undo it


class Ledger:
    """The ledger of one lab. Use `Ledger.open(state_dir)` (a context manager holding the lock)."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    @contextlib.contextmanager
    def open(cls, state_dir: Path, *, wait: float = 0.0) -> Iterator[Ledger]:
        """Lock the state dir's ledger for this process and yield it.

        Raises:
            StateError: another labctl holds the lock, or the ledger file is unreadable or too new.
        """
        with lab_lock(state_dir, wait=wait):
            yield cls(state_dir / LEDGER_FILE, _read(state_dir / LEDGER_FILE))

    @property
    def lab_id(self) -> str:
        """A random id for this lab, used to tag the ONTAP objects labctl creates."""
        return str(self.data["lab_id"])

    def entries(self) -> dict[str, dict[str, Any]]:
        """All entries by key (a copy)."""
        return {k: dict(v) for k, v in self.data["objects"].items()}

    def get(self, key: str) -> dict[str, Any] | None:
        """One entry, or None."""
        entry = self.data["objects"].get(key)
        return dict(entry) if entry is not None else None

    def intent(
        self,
        key: str,
        *,
        kind: str,
        action: str,
        name: str,
        prior: dict[str, Any] | None = None,
        desired: dict[str, Any] | None = None,
        **ids: Any,
    ) -> None:
        """Record, before the REST call, that `action` (create/modify) is about to happen to `key`.

        Prior values already recorded are kept: the first value labctl saw is the one teardown restores.
        """
        entry = self.data["objects"].get(key) or {"kind": kind, "name": name, "created": False, "prior": {}}
        entry["kind"], entry["name"] = kind, name
        if action == "create" and entry.get("state") != DONE:
            entry["created"] = True
        for field, value in (prior or {}).items():
            entry["prior"].setdefault(field, value)
        if desired is not None:
            entry["desired"] = {**entry.get("desired", {}), **desired}
        entry.update({k: v for k, v in ids.items() if v is not None})
        entry["state"] = INTENT
        entry["action"] = action
        entry["updated"] = _now()
        self.data["objects"][key] = entry
        self.save()

    def done(self, key: str, **ids: Any) -> None:
        """Record that the mutation of `key` succeeded (with the ids ONTAP gave the object)."""
        entry = self.data["objects"][key]
        entry.update({k: v for k, v in ids.items() if v is not None})
        entry["state"] = DONE
        entry["updated"] = _now()
        self.save()

    def update(self, key: str, **fields: Any) -> None:
        """Change fields of an existing entry (e.g. `state=REMOVING`)."""
        entry = self.data["objects"][key]
        entry.update(fields)
        entry["updated"] = _now()
        self.save()

    def forget(self, key: str) -> None:
        """Drop `key`: the object is gone or restored, labctl no longer owns anything about it."""
        if self.data["objects"].pop(key, None) is not None:
            self.save()

    def set_meta(self, **fields: Any) -> None:
        """Remember lab-level facts (e.g. the NFS server address the hosts mount from)."""
        self.data.setdefault("meta", {}).update(fields)
        self.save()

    @property
    def meta(self) -> dict[str, Any]:
        """Lab-level facts."""
        return dict(self.data.get("meta", {}))

    def save(self) -> None:
        """Write the ledger atomically with owner-only permissions."""
        write_json_atomic(self.path, self.data, indent=2, sort_keys=True, mode=0o600, durable=True)


@contextlib.contextmanager
def lab_lock(state_dir: Path, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the lab's lock (the one `Ledger.open` takes): the hosts phase of provision and teardown runs under
    it too, so two labctl runs never work on the same lab at once. Not re-entrant within one process.

    Raises:
        StateError: another labctl holds the lock.
    """
    private_dir(state_dir)
    lock_path = state_dir / LOCK_FILE
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _lock(fd, lock_path, wait)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_ledger(state_dir: Path) -> dict[str, Any]:
    """The ledger's content without taking the lock (for read-only reports).

    Raises:
        StateError: the file is unreadable or from a newer labctl.
    """
    return _read(state_dir / LEDGER_FILE)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _lock(fd: int, path: Path, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = path.read_text(encoding="utf-8", errors="replace").strip() or "?"
                raise StateError(
                    f"another labctl run holds the lab's lock (pid {holder})",
                    where=str(path),
                    fix="wait for it to finish; the lock is released when that process exits",
                ) from None
            time.sleep(0.1)


def _empty() -> dict[str, Any]:
    return {
        "version": LEDGER_VERSION,
        "lab_id": secrets.token_hex(4),
        "created": _now(),
        "objects": {},
        "meta": {},
    }


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _empty()
    except OSError as exc:
        raise StateError(
            f"cannot read the ledger: {exc.strerror}",
            where=str(path),
            fix="check the state dir's permissions (it should be owned by you, mode 0700)",
        ) from None
    try:
        data = json.loads(text)
        version = int(data["version"])
        data["objects"]  # noqa: B018 - the key must exist
    except (ValueError, KeyError, TypeError):
        raise StateError(
            "the ledger is not valid labctl JSON",
            where=str(path),
            fix="restore it from a backup; do not delete it while labctl objects exist on the "
            "cluster, or teardown cannot tell them from yours",
        ) from None
    if version > LEDGER_VERSION:
        raise StateError(
            f"the ledger has version {version}; this labctl reads up to {LEDGER_VERSION}",
            where=str(path),
            fix="upgrade labctl",
        )
    data.setdefault("meta", {})
    data.setdefault("lab_id", secrets.token_hex(4))
    return data
