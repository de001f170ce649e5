"""The ONTAP password: one source (environment variable, file, or ansible-vault), resolved once and masked."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from labctl.errors import ConfigError
from labctl.redact import register_secret, register_secret_env

log = logging.getLogger(__name__)

SourceKind = Literal["env", "file", "vault", "plaintext"]


@dataclass(frozen=True)
class PasswordSource:
    """Where the password comes from: `key` is the inventory key that named it, `where` its file."""

    kind: SourceKind
    key: str
    where: str
    env: str | None = None
    path: Path | None = None
    value: str | None = None  # only for vault / allowed plaintext values, already decrypted

    def describe(self) -> str:
        """A short, secret-free description, e.g. `file /lab/secrets/pw (labctl_ontap_password_file)`."""
        detail = {
            "env": f"environment variable ${self.env}",
            "file": f"file {self.path}",
            "vault": "ansible-vault value",
            "plaintext": "plain-text value",
        }[self.kind]
        return f"{detail} ({self.key})"


def resolve_password(source: PasswordSource) -> SecretStr:
    """Read the password from its source, register it for redaction and return it.

    Raises:
        ConfigError: the variable is unset, the file is missing or unreadable, or the password is empty.
    """
    where = f"{source.where}: {source.key}"
    if source.kind == "env":
        assert source.env is not None
        register_secret_env(source.env)  # never handed on to Ansible
        value = os.environ.get(source.env)
        if value is None:
            raise ConfigError(
                f"environment variable {source.env} is not set",
                where=where,
                fix=f"export {source.env}=<the ONTAP password> before running labctl",
            )
    elif source.kind == "file":
        assert source.path is not None
        value = _read_password_file(source.path, where)
    else:
        value = source.value
    value = (value or "").rstrip("\r\n")
    register_secret(value)
    if not value:
        raise ConfigError(
            "the ONTAP password is empty", where=where, fix=f"put the password in the {source.describe()}"
        )
    return SecretStr(value)


def _read_password_file(path: Path, where: str) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"password file {path} does not exist",
            where=where,
            fix="create it (one line, mode 0600) or point the key at the right file",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read password file {path}: {exc.strerror}",
            where=where,
            fix="make it readable by the user running labctl (and nobody else: chmod 600)",
        ) from None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("password file %s is readable by other users; chmod 600 it", path)
    return text
