"""Each inventory key's default is defined once (LabVars); the playbooks' role defaults, the sample
inventory's documented values and the run's view of a host all agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from labctl.config.experiment import Experiment
from labctl.config.keys import LabVars, default_of
from labctl.experiment.hosts import Target
from labctl.experiment.run import trainer_spec, with_local_backbone

REPO = Path(__file__).resolve().parents[2]
ROLE_DEFAULTS = REPO / "playbooks" / "roles" / "labctl" / "defaults" / "main.yml"
SAMPLE = REPO / "inventories" / "sample" / "group_vars" / "all.yml"
# role defaults that are not plain values: a template, or "ask labctl" (the data LIF passed as an extra var)
TEMPLATED = {"labctl_dataset_dir", "labctl_nfs_server"}


def _labvars_defaults() -> dict[str, object]:
    return {k: default_of(k) for k, f in LabVars.model_fields.items() if not f.is_required()}


def test_role_defaults_equal_the_one_definition():
    role = yaml.safe_load(ROLE_DEFAULTS.read_text(encoding="utf-8"))
    ours = _labvars_defaults()
    compared = [k for k in role if k in ours and k not in TEMPLATED]
    assert len(compared) >= 15
    for key in compared:
        assert role[key] == ours[key], f"role defaults: {key} = {role[key]!r}, LabVars: {ours[key]!r}"


def test_the_sample_inventory_documents_the_defaults_it_shows():
    ours = _labvars_defaults()
    shown = {}
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"# (labctl_\w+): (.+)", line.strip())
        if match and ours.get(match.group(1)) is not None:  # examples of keys without a default aside
            shown[match.group(1)] = yaml.safe_load(match.group(2))
    compared = list(shown)
    assert len(compared) >= 20
    for key in compared:
        assert shown[key] == ours[key], f"sample: {key} shows {shown[key]!r}, LabVars: {ours[key]!r}"


def test_a_run_on_inventory_defaults_uses_where_provision_installs():
    target = Target(name="gpu1", address="10.0.0.11")
    assert target.var("labctl_llmstudio_dir") == default_of("labctl_llmstudio_dir")
    spec = trainer_spec(Experiment(), target, "/var/tmp/labctl/r1/gpu1", "/mnt/fg_llm/out", "v1.2.0")
    assert spec["cwd"] == "/opt/labctl/h2o-llmstudio"
    assert spec["argv"][0] == "/opt/labctl/h2o-llmstudio/.venv/bin/python"
    assert spec["env"]["HF_HOME"] == "/var/tmp/labctl/hf-cache"


def test_an_air_gapped_lab_runs_offline_on_host_local_caches_and_a_staged_backbone():
    target = Target(
        name="gpu1",
        address="10.0.0.11",
        vars={"labctl_hf_offline": True, "labctl_llmstudio_backbone_dir": "/srv/models/llama2-13b"},
    )
    env = trainer_spec(Experiment(), target, "/var/tmp/labctl/r1/gpu1", "/mnt/fg_llm/out", "v1.2.0")["env"]
    assert env["TRITON_CACHE_DIR"] == default_of("labctl_triton_cache") == "/var/tmp/labctl/triton-cache"
    assert {env[k] for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")} == {"1"}
    assert with_local_backbone(Experiment(), target).model.backbone == "/srv/models/llama2-13b"
    online = trainer_spec(Experiment(), Target(name="gpu1", address="10.0.0.11"), "/r", "/o", "v1.2.0")["env"]
    assert "HF_HUB_OFFLINE" not in online
    assert (
        with_local_backbone(Experiment(), Target(name="g", address="a")).model.backbone
        == Experiment().model.backbone
    )
