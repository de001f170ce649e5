"""The throughput benchmark runs end to end at a tiny scale and prints its ratios."""

from __future__ import annotations

import re

from benchmarks.report_throughput import main


def test_benchmark_smoke(capsys, tmp_path):
    assert main(["--scale", "0.003", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ratio analysis / wc -l:" in out and "peak memory:" in out and "checkpoints" in out
    peak = float(re.search(r"peak memory: ([\d,.]+) MB", out)[1].replace(",", ""))
    assert peak > 0  # the process tree was sampled at least once
    floor = re.search(r"floor:\s+([\d.]+) s .*beyond it: (-?[\d.]+) s", out)
    took = float(re.search(r"analysis:\s+([\d.]+) s", out)[1])
    assert floor and float(floor[1]) > 0
    assert abs(float(floor[1]) + float(floor[2]) - took) < 0.002  # the two parts add up to the analysis' time
