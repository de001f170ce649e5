"""labctl's optional compiled scanners (`labctl/analysis/_scan.c`, built at install time when a C compiler is
there). Each parser keeps its pure-Python path: it is the reference, and the fallback without the module."""

from __future__ import annotations

import os
from types import ModuleType

PURE_ENV = "LABCTL_PURE_PYTHON"  # "1": use the pure-Python parsers even when the module is built


def scanner() -> ModuleType | None:
    """The `_scan` module, or None when it is not built or LABCTL_PURE_PYTHON=1."""
    if os.environ.get(PURE_ENV) == "1":
        return None
    try:
        from labctl.analysis import _scan
    except ImportError:
        return None
    return _scan
