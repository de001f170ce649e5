"""The config keys each H2O LLM Studio release accepts (causal LM problem type).

LLM Studio drops unknown keys with only a warning, so labctl checks every rendered key against the
installed release. The v1.2.0 set is `text_causal_language_modeling_config.py @ v1.2.0`; later sets apply
the dataclass diffs per tag (research notes, llmstudio.md §3.3-3.4).
"""

from __future__ import annotations

import re

from labctl.config.keys import default_of

PINNED_VERSION: str = default_of("labctl_llmstudio_version")  # the release provision installs by default

_V1_2_0: dict[str, tuple[str, ...]] = {
    "": ("experiment_name", "output_directory", "llm_backbone", "problem_type"),
    "dataset": (
        "personalize",
        "chatbot_name",
        "chatbot_author",
        "train_dataframe",
        "validation_strategy",
        "validation_dataframe",
        "validation_size",
        "data_sample",
        "data_sample_choice",
        "system_column",
        "prompt_column",
        "answer_column",
        "parent_id_column",
        "text_system_start",
        "text_prompt_start",
        "text_answer_separator",
        "limit_chained_samples",
        "add_eos_token_to_system",
        "add_eos_token_to_prompt",
        "add_eos_token_to_answer",
        "mask_prompt_labels",
    ),
    "tokenizer": (
        "max_length_prompt",
        "max_length_answer",
        "max_length",
        "add_prompt_answer_tokens",
        "padding_quantile",
        "use_fast",
        "add_prefix_space",
    ),
    "architecture": (
        "pretrained",
        "backbone_dtype",
        "gradient_checkpointing",
        "force_embedding_gradients",
        "intermediate_dropout",
        "pretrained_weights",
    ),
    "training": (
        "loss_function",
        "optimizer",
        "learning_rate",
        "differential_learning_rate_layers",
        "differential_learning_rate",
        "use_flash_attention_2",
        "batch_size",
        "drop_last_batch",
        "epochs",
        "schedule",
        "warmup_epochs",
        "weight_decay",
        "gradient_clip",
        "grad_accumulation",
        "lora",
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "lora_target_modules",
        "save_best_checkpoint",
        "evaluation_epochs",
        "evaluate_before_training",
        "train_validation_data",
    ),
    "augmentation": (
        "token_mask_probability",
        "skip_parent_probability",
        "random_parent_probability",
        "neftune_noise_alpha",
    ),
    "prediction": (
        "metric",
        "metric_gpt_model",
        "metric_gpt_template",
        "min_length_inference",
        "max_length_inference",
        "batch_size_inference",
        "do_sample",
        "num_beams",
        "temperature",
        "repetition_penalty",
        "stop_tokens",
        "top_k",
        "top_p",
        "num_history",
    ),
    "environment": (
        "gpus",
        "mixed_precision",
        "compile_model",
        "use_deepspeed",
        "deepspeed_reduce_bucket_size",
        "deepspeed_stage3_prefetch_bucket_size",
        "deepspeed_stage3_param_persistence_threshold",
        "find_unused_parameters",
        "trust_remote_code",
        "huggingface_branch",
        "number_of_workers",
        "seed",
    ),
    "logging": ("logger", "neptune_project"),
}

# (tag, added, removed) in release order; keys are "section.key".
_CHANGES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("v1.0.0", ("environment.use_fsdp",), ()),
    ("v1.1.0", (), ("environment.use_fsdp",)),
    (
        "v1.5.0",
        (
            "environment.mixed_precision_dtype",
            "environment.deepspeed_method",
            "environment.deepspeed_allgather_bucket_size",
            "prediction.max_time",
        ),
        ("tokenizer.add_prefix_space",),
    ),
    ("v1.6.0", ("training.save_checkpoint", "training.use_dora"), ("training.save_best_checkpoint",)),
    (
        "v1.7.0",
        ("tokenizer.tokenizer_kwargs", "training.freeze_layers", "training.lora_unfreeze_layers"),
        (
            "tokenizer.max_length_prompt",
            "tokenizer.max_length_answer",
            "tokenizer.use_fast",
            "architecture.force_embedding_gradients",
        ),
    ),
    (
        "v1.9.0",
        ("training.attention_implementation", "dataset.only_last_answer", "dataset.prompt_column_separator"),
        ("training.use_flash_attention_2",),
    ),
    ("v1.10.0", ("training.use_rslora",), ()),
    (
        "v1.11.0",
        (
            "logging.log_step_size",
            "logging.log_all_ranks",
            "logging.wandb_project",
            "logging.wandb_entity",
            "training.min_learning_rate_ratio",
        ),
        (),
    ),
    ("v1.14.0", ("dataset.id_column",), ()),
]

OLDEST_KNOWN = (1, 0, 0)
NEWEST_KNOWN = (1, 14, 9)


def parse_version(tag: str) -> tuple[int, int, int]:
    """`v1.2.0` / `1.14.9` / `v1.2.0-3-gabc` → (1, 2, 0)."""
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", tag.strip())
    if not match:
        raise ValueError(f"not an LLM Studio release tag: {tag!r}")
    return int(match[1]), int(match[2]), int(match[3] or 0)


def keys_for(tag: str) -> frozenset[str]:
    """Every `section.key` (top-level keys without a section) the release accepts."""
    version = parse_version(tag)
    keys = {f"{section}.{k}" if section else k for section, names in _V1_2_0.items() for k in names}
    for change_tag, added, removed in _CHANGES:
        if parse_version(change_tag) <= version:
            keys -= set(removed)
            keys |= set(added)
    return frozenset(keys)


def supported(tag: str) -> bool:
    """Whether labctl knows this release's key set."""
    return OLDEST_KNOWN <= parse_version(tag) <= NEWEST_KNOWN


def train_script(tag: str) -> str:
    """train.py moved under llm_studio/ in v1.13.0."""
    return "llm_studio/train.py" if parse_version(tag) >= (1, 13, 0) else "train.py"
