"""experiment.yaml: the validated description of one instrumented fine-tune.

The defaults are the reference experiment (the blog run): `h2oai/h2ogpt-4096-llama2-13b`, int4 backbone,
lr 0.00015, batch 2, 3 epochs, no evaluation before training, save the best checkpoint, OASST.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from labctl.config.yaml_budget import ALIAS_FIX, AliasBudgetExceeded, load_yaml
from labctl.errors import ConfigError

Dtype = Literal["float32", "bfloat16", "float16", "int8", "int4"]


GiB = 1 << 30
TiB = 1 << 40
MAX_CHECKPOINT_BYTES = 4 * TiB
"""The largest checkpoint labctl will emulate (a 405B-parameter bf16 model is ~0.8 TiB)."""
DAY_S = 86400.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """`epochs: true` is a mistake, not 1: a number field refuses booleans."""
        field = cls.model_fields.get(info.field_name or "")
        kinds = set(get_args(field.annotation)) | {field.annotation} if field else set()
        if isinstance(value, bool) and kinds & {int, float} and bool not in kinds:
            raise ValueError(f"must be a number, not {str(value).lower()}")
        return value


class ModelSpec(_Strict):
    """The backbone and, for unknown backbones, its shape (used for the emulated checkpoint size)."""

    backbone: str = "h2oai/h2ogpt-4096-llama2-13b"
    backbone_dtype: Dtype = "int4"
    layers: int | None = Field(None, gt=0, le=1024)
    hidden: int | None = Field(None, gt=0, le=1 << 17)
    ffn: int | None = Field(None, gt=0, le=1 << 20)
    vocab: int | None = Field(None, gt=0, le=1 << 22)
    kv_heads_ratio: float | None = Field(None, gt=0, le=1, description="kv heads / attention heads (GQA)")


class TrainingSpec(_Strict):
    """Hyper-parameters; `save_checkpoint` is version-neutral (rendered per LLM Studio version)."""

    learning_rate: float = Field(0.00015, gt=0)
    batch_size: int = Field(2, gt=0, le=1 << 16)
    epochs: int = Field(3, ge=0, le=10_000)
    evaluate_before_training: bool = False
    save_checkpoint: Literal["best", "last", "disable"] = "best"
    evaluation_epochs: float = Field(
        1.0, gt=0, description="checkpoint cadence: one evaluation (+save) per N epochs"
    )
    lora: bool = True
    lora_r: int = Field(4, gt=0, le=1 << 16)
    lora_alpha: int = Field(16, gt=0)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    max_length: int = Field(512, gt=0, le=1 << 20)
    metric: Literal["Perplexity", "BLEU", "GPT"] = "Perplexity"
    seed: int = 42

    @model_validator(mode="before")
    @classmethod
    def _legacy_save_best(cls, data: Any) -> Any:
        if isinstance(data, dict) and "save_best_checkpoint" in data:
            data = dict(data)
            best = data.pop("save_best_checkpoint")
            if "save_checkpoint" in data:
                raise ValueError("give either save_best_checkpoint or save_checkpoint, not both")
            data["save_checkpoint"] = "best" if best else "last"
        return data


class DatasetSpec(_Strict):
    """OASST as prepared by LLM Studio (`train_full.pq`); the default location comes from the inventory."""

    name: Literal["oasst"] = "oasst"
    train_dataframe: str | None = Field(
        None, description="absolute path; default <labctl_dataset_dir>/train_full.pq"
    )


class MonitorSpec(_Strict):
    """What runs next to the trainer on every host (all output on host-local disk)."""

    dmon_interval_s: int = Field(10, ge=1)
    nfsiostat_interval_s: int = Field(1, ge=1)
    mountstats_interval_s: float = Field(1.0, gt=0)
    mountstats: bool = True
    nfsiostat: bool = True
    dmon: bool = True
    bpftrace: bool = True
    lead_s: float = Field(2.0, ge=0, description="monitors run this long before training starts")
    tail_s: float = Field(2.0, ge=0, description="and this long after it ends")
    ontap_interval_s: float = Field(
        5.0, ge=1, le=300, description="the controller polls ONTAP's raw counters this often (raw/_ontap/)"
    )


class LlmStudioSpec(_Strict):
    """How to drive LLM Studio; `extra` sets any further `section.key` of the installed version."""

    version: str | None = Field(None, description="default: the installed tag, else labctl_llmstudio_version")
    mixed_precision_dtype: Literal["float16", "bfloat16"] | None = None
    attention_implementation: Literal["auto", "eager", "sdpa", "flash_attention_2"] | None = None
    number_of_workers: int = Field(8, ge=0)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("extra")
    @classmethod
    def _dotted(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key.count(".") > 1 or not key.strip("."):
                raise ValueError(f"extra key {key!r} must be 'section.key' or a top-level key")
        return value


class EmulateSpec(_Strict):
    """The DLIO-style emulated trainer (GPU-less hosts, the simulated lab)."""

    steps_per_epoch: int = Field(40, gt=0, le=10_000_000)
    step_compute_s: float = Field(0.5, ge=0, le=DAY_S, description="emulated GPU time per step")
    read_bytes_per_step: int = Field(1 << 20, ge=0, le=64 * GiB, description="data set bytes read per step")
    startup_s: float = Field(2.0, ge=0, le=DAY_S, description="model load time (GPU idle)")
    validation_s: float = Field(2.0, ge=0, le=DAY_S, description="emulated validation time (GPU busy)")
    checkpoint_bytes: int | None = Field(
        None, gt=0, le=MAX_CHECKPOINT_BYTES, description="override the computed checkpoint size"
    )
    checkpoint_scale: float = Field(
        1.0, gt=0, le=1000, description="multiply the computed size (simulated lab)"
    )
    write_chunk_bytes: int = Field(16 << 20, gt=0, le=GiB)
    loader_workers: int = Field(2, ge=0, le=64, description="forked data-loader workers (pt_data_worker)")
    dataset_bytes: int = Field(
        64 << 20, gt=0, le=TiB, description="size of the synthetic data set when none exists"
    )
    gpu_mem_mib: int = Field(20480, ge=0, le=1 << 20)


class Experiment(_Strict):
    """One experiment file."""

    name: str = Field("reference", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    hosts: str = Field("gpu_hosts", description="inventory host pattern")
    gpus_per_host: int = Field(1, ge=1, le=16)
    trainer: Literal["llmstudio", "emulate"] = "llmstudio"
    model: ModelSpec = Field(default_factory=ModelSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    output_dir: str | None = Field(None, description="LLM Studio output directory; default on the FlexGroup")
    monitors: MonitorSpec = Field(default_factory=MonitorSpec)
    llmstudio: LlmStudioSpec = Field(default_factory=LlmStudioSpec)
    emulate: EmulateSpec = Field(default_factory=EmulateSpec)

    @field_validator("output_dir")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("output_dir must be an absolute path on the FlexGroup mount")
        return value


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file; every problem is a `ConfigError` naming the key."""
    path = Path(path)
    try:
        raw = load_yaml(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read experiment file: {exc.strerror}", where=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", where=str(path)) from None
    except AliasBudgetExceeded as exc:
        raise ConfigError(f"not valid YAML: {exc}", where=str(path), fix=ALIAS_FIX) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", where=str(path)) from exc
    except RecursionError:
        raise ConfigError("not valid YAML: nested too deeply", where=str(path)) from None
    if not isinstance(raw, dict):
        raise ConfigError("an experiment file is a YAML mapping", where=str(path))
    return parse_experiment(raw, where=str(path))


def parse_experiment(raw: dict[str, Any], where: str = "experiment") -> Experiment:
    """Validate a mapping as an `Experiment`."""
    try:
        return Experiment.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(
            f"{loc}: {first['msg'].removeprefix('Value error, ')}{more}",
            where=where,
            fix="see `labctl run --help` and templates/experiment.sim.yaml",
        ) from None  # the chained error would reprint the whole input
