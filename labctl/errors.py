"""The one user-facing error hierarchy. The CLI catches `LabctlError` once and prints it."""

from __future__ import annotations


class LabctlError(Exception):
    """An error the user can act on: what went wrong, where, and what to do about it."""

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.fix = fix

    def __str__(self) -> str:
        parts = [f"{self.where}: {self.message}" if self.where else self.message]
        if self.fix:
            parts.append(f"fix: {self.fix}")
        return "\n".join(parts)


class UsageError(LabctlError):
    """Bad command line, configuration, inventory or experiment file (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration, inventory or experiment file is invalid."""


class OntapError(LabctlError):
    """The ONTAP cluster refused or failed a request."""

    def __init__(self, message: str, *, code: str | None = None, where: str | None = None,
                 fix: str | None = None) -> None:
        super().__init__(message, where=where, fix=fix)
        self.code = code


class HostError(LabctlError):
    """A GPU host could not be reached or a playbook failed on it."""


class RunError(LabctlError):
    """An experiment run could not be started, followed or collected."""


class Interrupted(LabctlError):
    """Ctrl-C where labctl knows what it left behind and says how to go on (exit code 130)."""

    exit_code = 130


class StateError(LabctlError):
    """The ledger or a run bundle is missing, locked or inconsistent."""
