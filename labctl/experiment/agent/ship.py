"""The host agent as one zipapp (`agent.pyz`): the agent package and the stdlib-only parts of labctl it
imports, so a host needs nothing but Python 3 (`python3 agent.pyz COMMAND …`)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

ARCHIVE = "agent.pyz"
LABCTL = Path(__file__).resolve().parents[2]
SHIPPED = ("__init__.py", "errors.py", "fileops.py", "formats/*.py", "experiment/__init__.py",
           "experiment/agent/*.py")
MAIN = b"import sys\nfrom labctl.experiment.agent.__main__ import main\nsys.exit(main(sys.argv[1:]))\n"
EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same sources make the same archive


def agent_archive() -> bytes:
    """The zipapp's bytes (`__main__.py` and `labctl/…`)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("__main__.py", EPOCH), MAIN)
        for pattern in SHIPPED:
            for path in sorted(LABCTL.glob(pattern)):
                name = f"labctl/{path.relative_to(LABCTL)}"
                zf.writestr(zipfile.ZipInfo(name, EPOCH), path.read_bytes())
    return buf.getvalue()


def write_agent(directory: Path) -> Path:
    """Write `agent.pyz` into `directory` (tests and benchmarks run the agent as the hosts do)."""
    path = directory / ARCHIVE
    path.write_bytes(agent_archive())
    return path
