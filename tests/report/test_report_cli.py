"""`labctl report` / `labctl compare` end to end, and report.html rendered by headless Chromium."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks.synthbundle import SynthCheckpoint, SynthSpec, write_run
from labctl.cli import main

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _small(run: Path, nconnect: int = 4) -> SynthSpec:
    return write_run(run, SynthSpec(warmup_s=10, train_s=300, cooldown_s=10, nconnect=nconnect, checkpoints=[
        SynthCheckpoint(60, 10, 800_000_000), SynthCheckpoint(160, 10, 800_000_000),
        SynthCheckpoint(260, 10, 800_000_000)], suppression_s=5, dataset_read_s=20))


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "run-nc4"
    _small(run)
    assert main(["report", str(run)]) == 0
    return run


def test_report_writes_three_outputs_and_reruns_from_the_bundle(reported, capsys):
    for name in ("report.html", "summary.json", "timeline.parquet"):
        assert (reported / name).stat().st_size > 0
    first = json.loads((reported / "summary.json").read_text())
    assert main(["report", str(reported)]) == 0
    assert json.loads((reported / "summary.json").read_text()) == first
    assert "3 checkpoint(s)" in capsys.readouterr().out


def test_report_html_is_self_contained(reported):
    page = (reported / "report.html").read_text()
    assert "<script" not in page and not re.search(r'(src|href)="(https?:)?//', page)
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3  # GPU utilisation, NFS throughput, I/O size histograms
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    for text in ("Checkpoints", "Stall fraction", "Sizing", "nconnect=4", "llmstudio"):
        assert text in page



def test_analysis_tells_each_step_with_the_file_and_its_size(reported):
    from labctl.report.analyse import analyse

    steps: list[str] = []
    analyse(reported, write=False, progress=steps.append)
    raw = sorted(p.name for p in (reported / "raw").rglob("*.log")) + ["bpftrace.jsonl"]
    told = " ".join(steps)
    for name in raw:
        if name in ("train.log",):
            continue
        assert f": {name} (" in told and " MB)" in told, (name, steps)
    assert steps[-1] == "1 s timeline and summary"  # write=False: no Parquet step

def test_missing_or_foreign_directory_is_a_state_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert "nope" in err and "run bundle not found" in err and "Traceback" not in err
    assert main(["report", str(tmp_path)]) == 1
    assert "no raw/ directory" in capsys.readouterr().err


def test_compare_sets_runs_side_by_side(reported, tmp_path, capsys):
    other = tmp_path / "run-nc16"
    _small(other, nconnect=16)
    out_html = tmp_path / "cmp.html"
    assert main(["compare", str(reported), str(other), "--html", str(out_html)]) == 0
    out = capsys.readouterr().out
    assert "run-nc4" in out and "run-nc16" in out and "stall %" in out
    row = next(line for line in out.splitlines() if "nconnect" in line)
    assert "4" in row and "16" in row
    assert "<table>" in out_html.read_text() and (other / "summary.json").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(reported, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr",
            "--v=0", f"--user-data-dir={tmp_path / 'profile'}"]
    url = (reported / "report.html").resolve().as_uri()
    dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=90)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("data:image/png;base64,") == 3 and "Checkpoints" in dom.stdout
    run = subprocess.run(base + ["--window-size=1200,1800", f"--screenshot={shot}", url],
                         capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stderr[-2000:]
    for log in (dom.stderr, run.stderr):
        assert "CONSOLE" not in log and "net::ERR" not in log and "Failed to load" not in log
    import matplotlib.image as mpimg
    import numpy as np

    px = mpimg.imread(shot)[..., :3]
    green = np.all(np.abs(px - np.array([0x2C, 0xA0, 0x2C]) / 255) < 0.08, axis=-1)  # Figure 1's mean line
    assert green.sum() > 200, "GPU utilisation figure not rendered"


def test_partial_or_odd_manifest_still_renders(tmp_path):
    run = tmp_path / "run"
    _small(run)
    (run / "manifest.json").write_text(json.dumps({"hosts": "gpu1", "mount_options": 5, "versions": [1, 2],
                                                   "experiment": {"training": {"epochs": "x"}}}))
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "versions: not in manifest.json" in page and page.count("data:image/png;base64,") == 3
    (run / "manifest.json").write_text("{not json")
    assert main(["report", str(run)]) == 0
    warnings = json.loads((run / "summary.json").read_text())["warnings"]
    assert any("unreadable JSON" in w for w in warnings)
    assert any("manifest.json missing" in w for w in warnings)
