"""labctl as an install has it: its bytecode compiled beside its sources, as `pip install` compiles it.

Where PYTHONDONTWRITEBYTECODE is set (as on the CI VM) and labctl runs from a checkout, every
`python -m labctl` would compile each labctl module it imports from source (~0.1-0.2 s): a cost no installed
labctl pays. Python still reads compiled files with that setting; it only never writes them, so the
benchmarks that time labctl's processes write them once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import labctl


def compile_labctl() -> None:
    """Write labctl's bytecode into its `__pycache__` directories (git ignores them)."""
    package = Path(labctl.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True, capture_output=True)
