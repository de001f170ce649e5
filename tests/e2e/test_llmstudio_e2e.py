"""The real H2O LLM Studio on the simulated lab, end to end, as a user runs it (issue 17):

    labctl sim up --dir D --hosts 1 --llmstudio-repo BUNDLE [--llmstudio-version TAG]
    labctl -i D/inventory provision
    labctl -i D/inventory run D/experiment.llmstudio.yaml
    labctl report RUN

Root only (simulated hosts), and skipped only when the source bundle is absent. The first install of a
release downloads about 2.6 GB from PyPI into pip's cache (/root/.cache/pip, shared by every run on the
machine); later runs install from that cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.hosts.simlab import fuse_reason, skip_reason

REPO = Path(__file__).resolve().parents[2]
BUNDLE = Path(os.environ.get("LABCTL_LLMSTUDIO_BUNDLE", REPO.parent / "shared" / "llmstudio" /
                             "h2o-llmstudio.bundle"))
PATH_KEYS = ("labctl_llmstudio_dir", "labctl_llmstudio_venv", "labctl_model_cache", "labctl_host_workdir",
             "labctl_mount_path", "labctl_mount_options", "labctl_dataset_dir")
# lines only the real LLM Studio writes (the fixture never does): its LoRA setup and its tokenizer loading
REAL_ONLY = ("Lora module names:",)

pytestmark = [pytest.mark.llmstudio_e2e, pytest.mark.root, pytest.mark.slow]


def _skip_unless_possible() -> None:
    if not BUNDLE.is_file():
        pytest.skip(f"the LLM Studio source bundle {BUNDLE} is absent (set LABCTL_LLMSTUDIO_BUNDLE to one)")
    reason = skip_reason() or fuse_reason()
    if reason:
        pytest.skip(reason)


def labctl(*args: str, timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "labctl", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, f"labctl {' '.join(args)}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def end_to_end(lab_dir: Path, version: str, timings: dict[str, float]) -> dict:
    """sim up → provision → run → report with the real LLM Studio `version`; returns what the run left."""
    def step(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
        start = time.monotonic()
        proc = labctl(*args, timeout=timeout)
        timings[name] = round(time.monotonic() - start, 1)
        return proc

    step("sim up", "sim", "up", "--dir", str(lab_dir), "--hosts", "1", "--llmstudio-repo", str(BUNDLE),
         "--llmstudio-version", version, timeout=300)
    inventory = lab_dir / "inventory"
    group_vars = yaml.safe_load((inventory / "group_vars" / "all.yml").read_text(encoding="utf-8"))
    assert not set(PATH_KEYS) & set(group_vars), "the simulated inventory must run on the path defaults"
    step("provision", "-i", str(inventory), "provision", timeout=3000)
    runs = lab_dir / "runs"
    step("run", "-i", str(inventory), "run", str(lab_dir / "experiment.llmstudio.yaml"), "--runs-dir",
         str(runs), timeout=900)
    (bundle,) = [p for p in runs.iterdir() if (p / "manifest.json").exists()]
    step("report", "report", str(bundle), timeout=300)
    lab = json.loads((lab_dir / "lab.json").read_text(encoding="utf-8"))
    return {"bundle": bundle, "lab": lab, "manifest": json.loads((bundle / "manifest.json").read_text())}


def check_real_training(result: dict, version: str) -> None:
    bundle, manifest, lab = result["bundle"], result["manifest"], result["lab"]
    assert manifest["success"] is True and manifest["state"] == "finished", manifest.get("errors")
    assert manifest["versions"]["llmstudio"] == version or version in json.dumps(manifest["versions"])
    (host,) = [h["name"] for h in lab["hosts"]]
    log = (bundle / "raw" / host / "train.log").read_text(encoding="utf-8", errors="replace")
    for needle in (*REAL_ONLY, "Training on CPU. This will be slow.", "Using float32 for backbone",
                   "Loading /var/tmp/labctl/models/tiny-llama", "Training Epoch: 2 / 2"):
        assert needle in log, f"{needle!r} not in LLM Studio's log"
    # the checkpoint's bytes are on the FlexGroup (the simulator's volume directory)
    volume = Path(lab["ontap"]["data_dir"]) / "llm-lab" / "fg_llm"
    checkpoints = [p for p in volume.rglob("checkpoint.pth") if p.stat().st_size > 0]
    assert checkpoints, f"no checkpoint.pth with bytes under {volume}"
    flags = json.loads((checkpoints[0].parent / "flags.json").read_text(encoding="utf-8"))
    assert flags["status"] == "finished"
    summary = json.loads((bundle / "summary.json").read_text(encoding="utf-8"))
    assert summary["checkpoints"], "the report found no checkpoint in LLM Studio's log"


@pytest.mark.parametrize("version", ["v1.2.0", "v1.9.0"])
def test_real_llmstudio_end_to_end(tmp_path_factory, version):
    _skip_unless_possible()
    from labctl.testlab.lab import sim_down

    lab_dir = tmp_path_factory.mktemp(f"llmstudio-{version}")
    timings: dict[str, float] = {}
    try:
        result = end_to_end(lab_dir, version, timings)
        check_real_training(result, version)
    finally:
        print(f"LLM Studio {version} end to end, seconds per step: {timings}")
        sim_down(lab_dir)
