"""The throughput benchmark runs end to end at a tiny scale and prints its ratios."""

from __future__ import annotations

from benchmarks.report_throughput import main


def test_benchmark_smoke(capsys, tmp_path):
    assert main(["--scale", "0.003", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ratio analysis / wc -l:" in out and "peak RSS:" in out and "checkpoints" in out
