"""The emulated trainer: LLM Studio's log format and finished flag, checkpoint size and cadence,
GPU activity."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from labctl.experiment.agent import emulator

EMULATOR = Path(emulator.__file__)
# The regex suggested by the LLM Studio research notes (§5.4) for the tqdm lines.
BAR = re.compile(
    r"(?P<desc>train loss(?:: (?P<loss>[0-9.]+|nan))?|validation progress):\s+(?P<pct>\d+)%\|[^|]*\|"
    r"\s*(?P<n>\d+)/(?P<total>\d+) \[(?P<elapsed>[0-9:]+)<(?P<eta>[0-9:?]+),\s*(?P<rate>[0-9.?]+)"
    r"(?P<unit>it/s|s/it)\]"
)
PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - INFO: ")


def test_bar_lines_match_tqdm():
    assert emulator.fmt_bar("train loss", 0, 43, 0) == "train loss:   0%|          | 0/43 [00:00<?, ?it/s]"
    assert emulator.fmt_bar("train loss: 1.23", 6, 43, 0.0616).startswith(
        "train loss: 1.23:  14%|#3        | 6/43 [00:00<00:00, 97."
    )
    assert emulator.fmt_bar("train loss: 1.23", 43, 43, 0.45).startswith(
        "train loss: 1.23: 100%|##########| 43/43"
    )
    slow = emulator.fmt_bar("validation progress", 3, 7, 4000)
    assert "1:06:40<" in slow and slow.endswith("s/it]")


def run_emulator(tmp_path: Path, **over) -> tuple[int, Path, dict]:
    spec = {
        "output_dir": str(tmp_path / "fg" / "out"),
        "dataset_path": str(tmp_path / "fg" / "data" / "train.pq"),
        "epochs": 3,
        "steps_per_epoch": 8,
        "step_compute_s": 0.05,
        "loader_workers": 2,
        "startup_s": 0.1,
        "validation_s": 0.1,
        "checkpoint_bytes": 3_000_001,
        "write_chunk_bytes": 1 << 20,
        "dataset_bytes": 2_000_000,
        "read_bytes_per_step": 300_000,
        "activity_path": str(tmp_path / "gpu" / "activity.json"),
        "gpus": 2,
    }
    spec.update(over)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, str(EMULATOR), str(tmp_path / "spec.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, Path(spec["output_dir"]), {"stderr": done.stderr, **spec}


def test_emulated_run_looks_like_llm_studio(tmp_path):
    rc, out, info = run_emulator(tmp_path)
    assert rc == 0, info["stderr"]
    assert json.loads((out / "flags.json").read_text())["status"] == "finished"
    assert (out / "checkpoint.pth").stat().st_size == 3_000_001
    log = (out / "logs.log").read_text()
    assert log == info["stderr"]  # the same lines on stderr (what train.log captures)
    lines = log.splitlines()
    assert all(PREFIX.match(line) for line in lines)
    assert sum("Training Epoch: " in line for line in lines) == 3
    assert "Training Epoch: 3 / 3" in log
    bars = [m for m in map(BAR.search, lines) if m and m["desc"].startswith("train loss")]
    assert bars and bars[-1]["n"] == bars[-1]["total"] == "8"
    saves = [line for line in lines if "Saving best model checkpoint: val_Perplexity" in line]
    assert len(saves) == 3  # save best, one evaluation per epoch, loss keeps improving
    summary = [line for line in lines if "labctl-emulator: wrote" in line][0]
    assert "wrote 11000003 bytes in 3 checkpoints" in summary  # 3 checkpoints + the synthetic data set
    assert "read 7200000 bytes" in summary
    act = json.loads((tmp_path / "gpu" / "activity.json").read_text())
    assert act["gpus"] == 2 and len(act["busy_seconds"]) == 2 and act["mem_used_mib"] == [20480, 20480]
    assert 24 * 0.05 <= act["busy_seconds"][0] <= 24 * 0.05 + 0.3 + 1.0  # compute + validation only


def test_last_mode_and_cadence_without_workers(tmp_path):
    rc, out, info = run_emulator(
        tmp_path, save_checkpoint="last", evaluation_epochs=0.5, epochs=2, loader_workers=0
    )
    assert rc == 0, info["stderr"]
    log = (out / "logs.log").read_text()
    assert log.count("Saving last model checkpoint to") == 4
    assert log.count("Evaluation step:") == 4
    assert "read 4800000 bytes" in log


def test_failure_leaves_no_finished_flag(tmp_path):
    (tmp_path / "fg").mkdir()
    (tmp_path / "fg" / "out").write_text("a file where the output directory should be")
    rc, out, info = run_emulator(tmp_path)
    assert rc != 0
    assert not (tmp_path / "fg" / "out" / "flags.json").exists()
