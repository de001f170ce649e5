"""The LLM Studio fixture repository: tagged checkout, data set preparation, a real-format train.py run."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pyarrow.parquet as pq
import yaml

from labctl.config.keys import default_of
from labctl.testlab.fixture_repo import FIXTURE_TAG, make_fixture_repo

PROGRESS = re.compile(r"(?P<desc>train loss(?:: (?P<loss>[0-9.]+|nan))?|validation progress):\s+(?P<pct>\d+)%"
                      r"\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+) \[(?P<elapsed>[0-9:]+)<(?P<eta>[0-9:?]+),"
                      r"\s*(?P<rate>[0-9.?]+)(?P<unit>it/s|s/it)\]")


def test_fixture_repo_prepares_data_and_trains(tmp_path):
    repo = make_fixture_repo(tmp_path / "repo")
    tags = subprocess.run(["git", "-C", str(repo), "tag"], capture_output=True, text=True).stdout.split()
    assert tags == [FIXTURE_TAG] == [default_of("labctl_llmstudio_version")]  # the lab runs on the default
    assert make_fixture_repo(tmp_path / "repo") == repo  # reused
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-c", "import sys; from llm_studio.app_utils.default_datasets import "
                    "prepare_default_dataset_causal_language_modeling as p; p(sys.argv[1])", str(data)],
                   cwd=repo, check=True)
    table = pq.read_table(data / "train_full.pq")
    assert table.column_names == ["instruction", "output", "id", "parent_id"] and table.num_rows >= 10
    out = tmp_path / "out"
    cfg = {"problem_type": "text_causal_language_modeling", "output_directory": str(out),
           "llm_backbone": "h2oai/h2ogpt-4096-llama2-13b",
           "dataset": {"train_dataframe": str(data / "train_full.pq"), "prompt_column": ["instruction"]},
           "architecture": {"backbone_dtype": "int4"},
           "training": {"epochs": 2, "batch_size": 2, "learning_rate": 0.00015, "save_best_checkpoint": True,
                        "evaluate_before_training": False, "save_checkpoint": "best"}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run = subprocess.run([sys.executable, "train.py", "-Y", str(tmp_path / "cfg.yaml")], cwd=repo,
                         capture_output=True, text=True, timeout=120,
                         env={"LABCTL_FIXTURE_STEP_SECONDS": "0", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    log = (out / "logs.log").read_text()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - INFO: Training Epoch: 2 / 2$", log, re.M)
    assert "Keys {'save_checkpoint'} are not in the config." in log  # v1.2.0 drops newer keys
    assert any(PROGRESS.search(line) for line in log.splitlines())
    # GPT is v1.2.0's default metric: higher is better, so the first best is -inf
    saves = re.findall(r"INFO: Saving best model checkpoint: val_GPT (\S+) -> (\S+) to ", log)
    assert len(saves) == 2 and saves[0][0] == "-inf" and saves[1][0] == saves[0][1]
    # LLM Studio v1.2.0's own lines (research §8, and a real CPU run: tests/report/fixtures/)
    assert "INFO: Number of observations in train dataset: " in log
    assert re.search(r"INFO: train loss:   0%\|          \| 0/\d+ \[00:00<\?, \?it/s\]$", log, re.M)
    assert re.search(r"INFO: validation progress:   0%\|          \| 0/\d+ \[00:00<\?, \?it/s\]$", log, re.M)
    last_bars = [ln.split(" - INFO: ")[1] for ln in log.splitlines() if "train loss" in ln and "100%" in ln]
    # tqdm's close() logs the last state again (with the overall rate)
    assert len(last_bars) == 4 and last_bars[0].split("[")[0] == last_bars[1].split("[")[0]
    assert (out / "checkpoint.pth").stat().st_size == 1 << 20
    assert json.loads((out / "flags.json").read_text())["status"] == "finished"
