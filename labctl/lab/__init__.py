"""Orchestration of the lab: provision, teardown and status, over ontap/* and the hosts phase,
recorded in the ledger. `hosts_phase` (the GPU hosts, written by the hosts issue) is optional:
see `hosts_phase_module`."""

from __future__ import annotations

import importlib
from types import ModuleType


def hosts_phase_module() -> ModuleType | None:
    """`labctl.lab.hosts_phase` if it is installed, else None."""
    try:
        return importlib.import_module("labctl.lab.hosts_phase")
    except ModuleNotFoundError as exc:
        if exc.name != "labctl.lab.hosts_phase":
            raise
        return None
