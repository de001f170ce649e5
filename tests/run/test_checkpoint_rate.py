"""The checkpoint-rate benchmark runs and prints the ratio it measured (the value is machine-dependent)."""

from __future__ import annotations

import re

from benchmarks.checkpoint_rate import main


def test_benchmark_prints_a_ratio(tmp_path, capsys):
    assert main(["--dir", str(tmp_path), "--mib", "8", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    ratio = float(re.search(r"^ratio emulator/dd: ([0-9.]+)$", out, re.M)[1])
    assert ratio > 0
    assert list(tmp_path.iterdir()) == []  # both test files removed
