"""experiment.yaml schema (reference defaults) and the LLM Studio config rendered per release."""

from __future__ import annotations

import pytest
import yaml

from labctl.config.experiment import Experiment, load_experiment, parse_experiment
from labctl.errors import ConfigError
from labctl.experiment import llmstudio_keys as K
from labctl.experiment.modelsize import checkpoint_bytes, emulated_checkpoint_bytes
from labctl.experiment.render import flatten, render_config
from labctl.paths import repo_data

RELEASES = [
    "v1.0.0",
    "v1.2.0",
    "v1.4.1",
    "v1.5.0",
    "v1.6.0",
    "v1.7.0",
    "v1.9.0",
    "v1.10.0",
    "v1.11.0",
    "v1.12.1",
    "v1.13.0",
    "v1.14.0",
    "v1.14.9",
]


def render(exp: Experiment, version: str = K.PINNED_VERSION) -> dict:
    text = render_config(
        exp,
        version=version,
        output_directory="/mnt/fg_llm/labctl/r/gpu1",
        train_dataframe="/mnt/fg_llm/data/oasst/train_full.pq",
    )
    return yaml.safe_load(text)


def test_defaults_are_the_reference_experiment():
    e = Experiment()
    assert e.model.backbone == "h2oai/h2ogpt-4096-llama2-13b" and e.model.backbone_dtype == "int4"
    assert (e.training.learning_rate, e.training.batch_size, e.training.epochs) == (0.00015, 2, 3)
    assert e.training.evaluate_before_training is False and e.training.save_checkpoint == "best"
    assert e.dataset.name == "oasst" and e.trainer == "llmstudio" and e.hosts == "gpu_hosts"
    assert (e.monitors.dmon_interval_s, e.monitors.nfsiostat_interval_s, e.monitors.bpftrace) == (10, 1, True)


def test_legacy_key_and_errors_name_the_key(tmp_path):
    assert parse_experiment({"training": {"save_best_checkpoint": False}}).training.save_checkpoint == "last"
    with pytest.raises(ConfigError, match="training.batch_size"):
        parse_experiment({"training": {"batch_size": 0}})
    with pytest.raises(ConfigError, match="trainer"):
        parse_experiment({"trainer": "deepspeed"})
    with pytest.raises(ConfigError, match="bogus"):
        parse_experiment({"bogus": 1})
    bad = tmp_path / "e.yaml"
    bad.write_text("training: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment(bad)


def test_reference_config_holds_exactly_the_pinned_release_keys():
    cfg = render(Experiment())
    assert set(flatten(cfg)) == K.keys_for(K.PINNED_VERSION)
    t = cfg["training"]
    assert t["save_best_checkpoint"] is True and t["evaluate_before_training"] is False
    assert t["learning_rate"] == 0.00015 and isinstance(t["learning_rate"], float)
    assert (t["batch_size"], t["epochs"]) == (2, 3)
    assert cfg["architecture"]["backbone_dtype"] == "int4"
    assert cfg["llm_backbone"] == "h2oai/h2ogpt-4096-llama2-13b"
    assert cfg["output_directory"].startswith("/mnt/fg_llm/")  # checkpoints land on the FlexGroup
    assert cfg["environment"]["gpus"] == ["0"]
    assert cfg["dataset"]["prompt_column"] == ["instruction"] and cfg["dataset"]["system_column"] == "None"


@pytest.mark.parametrize("version", RELEASES)
def test_every_release_gets_exactly_its_keys(version):
    assert set(flatten(render(Experiment(gpus_per_host=8), version))) == K.keys_for(version)


def test_renamed_keys_are_mapped():
    assert render(Experiment(), "v1.5.0")["training"]["save_best_checkpoint"] is True
    new = render(Experiment(), "v1.14.9")
    assert new["training"]["save_checkpoint"] == "best" and "save_best_checkpoint" not in new["training"]
    assert (
        render(Experiment.model_validate({"training": {"save_checkpoint": "last"}}), "v1.2.0")["training"][
            "save_best_checkpoint"
        ]
        is False
    )
    fa = Experiment.model_validate({"llmstudio": {"attention_implementation": "flash_attention_2"}})
    assert render(fa, "v1.8.0")["training"]["use_flash_attention_2"] is True
    assert render(fa, "v1.9.0")["training"]["attention_implementation"] == "flash_attention_2"


def test_a_key_the_release_would_drop_is_an_error():
    with pytest.raises(ConfigError, match="silently drop training.save_checkpoint"):
        render(Experiment.model_validate({"llmstudio": {"extra": {"training.save_checkpoint": "best"}}}))
    with pytest.raises(ConfigError, match="mixed_precision_dtype"):
        render(Experiment.model_validate({"llmstudio": {"mixed_precision_dtype": "float16"}}), "v1.2.0")
    with pytest.raises(ConfigError, match="disable"):
        render(Experiment.model_validate({"training": {"save_checkpoint": "disable"}}), "v1.2.0")
    with pytest.raises(ConfigError, match="outside"):
        render(Experiment(), "v0.0.9")
    ok = render(Experiment.model_validate({"llmstudio": {"extra": {"training.warmup_epochs": 0.5}}}))
    assert ok["training"]["warmup_epochs"] == 0.5


def test_checkpoint_size_from_parameters_and_dtype():
    ref = checkpoint_bytes(Experiment())
    assert 7.7e9 <= ref <= 8.6e9  # 13B int4 + fp32 embeddings/head + LoRA, weights only
    fp16 = checkpoint_bytes(Experiment.model_validate({"model": {"backbone_dtype": "float16"}}))
    assert 25e9 < fp16 < 27e9
    scaled = Experiment.model_validate({"trainer": "emulate", "emulate": {"checkpoint_scale": 0.001}})
    assert emulated_checkpoint_bytes(scaled) == int(ref * 0.001)
    with pytest.raises(ConfigError, match="shape"):
        checkpoint_bytes(Experiment.model_validate({"model": {"backbone": "acme/unknown"}}))


def test_sim_experiment_is_the_reference_sized_for_two_minutes():
    e = load_experiment(repo_data("templates", "experiment.sim.yaml"))
    ref = Experiment()
    assert e.trainer == "emulate"
    assert (e.model, e.training.learning_rate, e.training.batch_size, e.training.epochs) == (
        ref.model,
        ref.training.learning_rate,
        ref.training.batch_size,
        ref.training.epochs,
    )
    assert e.training.save_checkpoint == "best" and not e.training.evaluate_before_training
    checkpoints = int(e.training.epochs / e.training.evaluation_epochs)
    assert checkpoints >= 3
    em = e.emulate
    busy = e.training.epochs * (em.steps_per_epoch * em.step_compute_s) + checkpoints * em.validation_s
    total = busy + em.startup_s + e.monitors.lead_s + e.monitors.tail_s
    assert 90 <= total <= 150
