"""`labctl provision | teardown | status | prechecks` (filled in by the storage and hosts issues)."""

from __future__ import annotations

COMMANDS: list = []
