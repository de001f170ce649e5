"""Keep secrets out of every output: register them once, mask them everywhere."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, TextIO

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_env: set[str] = set()
MASK = "********"


def register_secret(value: str | None) -> None:
    """Remember a secret so that `redact` masks it from now on."""
    if value and len(value) >= 3:
        with _lock:
            _secrets.add(value)


def register_secret_env(name: str) -> None:
    """Remember that environment variable `name` holds a secret: `scrub_env` drops it."""
    with _lock:
        _secret_env.add(name)


def scrub_env(env: dict[str, str]) -> dict[str, str]:
    """`env` without the registered secret variables and without any variable holding a registered secret
    (for the environment of a child process such as ansible-playbook)."""
    with _lock:
        names, secrets = set(_secret_env), set(_secrets)
    return {k: v for k, v in env.items() if k not in names and not any(s in v for s in secrets)}


def redact(text: str) -> str:
    """Return `text` with every registered secret replaced by a mask."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


class RedactingStream:
    """A text stream (for a rich Console's `file`) that masks registered secrets in everything written.

    It writes to the current `sys.stdout` (or `sys.stderr`) at each call, as a Console without `file` does.
    """

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr

    @property
    def _stream(self) -> TextIO:
        return sys.stderr if self._stderr else sys.stdout

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
