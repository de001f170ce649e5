"""`python -m benchmarks --quick --only provision_vs_ansible` runs and prints ratios (not timed: machines
vary, so PASS/MISS is not checked)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NUM = r"[\d,]+(?:\.\d+)?"
LINE = re.compile(rf"^(?P<name>[\w.]+): (?P<a>{NUM})(?: [\w/]+)? vs (?P<b>{NUM})(?: [\w/]+)? = "
                  rf"(?P<ratio>{NUM})x \((?:goal [^)]*\)+ (?:PASS|MISS)|info\))$")

pytestmark = pytest.mark.slow


def test_quick_provision_vs_ansible_prints_ratios():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "provision_vs_ansible"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = {m["name"]: m for m in map(LINE.match, proc.stdout.splitlines()) if m}
    assert set(lines) >= {"provision_vs_ansible", "provision_vs_ansible.inprocess",
                          "provision_vs_ansible.rest_calls", "provision_noop"}, proc.stdout
    for m in lines.values():
        a, b, ratio = (float(m[k].replace(",", "")) for k in ("a", "b", "ratio"))
        assert a > 0 and b > 0 and ratio == pytest.approx(a / b, rel=0.02, abs=0.002), m.group(0)
    assert "0 POST/PATCH/DELETE from labctl" in proc.stdout  # the no-op second provision changes nothing
    assert "ERROR" not in proc.stdout
