"""H2O LLM Studio train entry point (labctl fixture): `python train.py -Y cfg.yaml [--section.key value …]`.

A tiny real-format run: loads the YAML like LLM Studio v1.2.0 (problem_type required, unknown keys dropped
with "Keys {...} are not in the config."), reads the train dataframe, logs in LLM Studio's format (also to
<output_directory>/logs.log), writes cfg.yaml, checkpoint.pth at each evaluation, and flags.json
{"status": "finished"} last. Env: LABCTL_FIXTURE_STEP_SECONDS (default 0.02) per step,
LABCTL_FIXTURE_CHECKPOINT_MB (default 1) checkpoint size.
"""

import argparse
import json
import logging
import os
import random
import sys
import time

import pyarrow.parquet as pq
import yaml

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SECTIONS = {
    "dataset": {"personalize", "chatbot_name", "chatbot_author", "train_dataframe",
                "validation_strategy", "validation_dataframe", "validation_size", "data_sample",
                "data_sample_choice", "system_column", "prompt_column", "answer_column", "parent_id_column",
                "text_system_start", "text_prompt_start", "text_answer_separator", "limit_chained_samples",
                "add_eos_token_to_system",
                "add_eos_token_to_prompt", "add_eos_token_to_answer", "mask_prompt_labels"},
    "tokenizer": {"max_length_prompt", "max_length_answer", "max_length", "add_prompt_answer_tokens",
                  "padding_quantile", "use_fast", "add_prefix_space"},
    "architecture": {"pretrained", "backbone_dtype", "gradient_checkpointing", "force_embedding_gradients",
                     "intermediate_dropout", "pretrained_weights"},
    "training": {"loss_function", "optimizer", "learning_rate", "differential_learning_rate_layers",
                 "differential_learning_rate", "use_flash_attention_2", "batch_size", "drop_last_batch",
                 "epochs",
                 "schedule", "warmup_epochs", "weight_decay", "gradient_clip", "grad_accumulation", "lora",
                 "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "save_best_checkpoint",
                 "evaluation_epochs", "evaluate_before_training", "train_validation_data"},
    "augmentation": {"token_mask_probability", "skip_parent_probability", "random_parent_probability",
                     "neftune_noise_alpha"},
    "prediction": {"metric", "metric_gpt_model", "metric_gpt_template", "min_length_inference",
                   "max_length_inference", "batch_size_inference", "do_sample", "num_beams", "temperature",
                   "repetition_penalty", "stop_tokens", "top_k", "top_p", "num_history"},
    "environment": {"gpus", "mixed_precision", "compile_model", "use_fsdp", "use_deepspeed",
                    "deepspeed_reduce_bucket_size", "deepspeed_stage3_prefetch_bucket_size",
                    "deepspeed_stage3_param_persistence_threshold", "find_unused_parameters",
                    "trust_remote_code", "huggingface_branch", "number_of_workers", "seed"},
    "logging": {"logger", "neptune_project"},
}
TOP = {"experiment_name", "output_directory", "llm_backbone", "problem_type"}
DEFAULTS = {"training": {"epochs": 1, "batch_size": 2, "learning_rate": 0.0001, "save_best_checkpoint": False,
                         "evaluation_epochs": 1.0, "evaluate_before_training": False},
            "dataset": {"validation_size": 0.01, "data_sample": 1.0},
            "prediction": {"metric": "GPT"}, "environment": {"seed": -1}}

logger = logging.getLogger(__name__)


def load_config(path, overrides):
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    if "problem_type" not in raw:
        raise KeyError("problem_type")
    if raw["problem_type"] != "text_causal_language_modeling":
        raise ValueError(f"Unknown problem type {raw['problem_type']}")
    cfg = {k: raw[k] for k in TOP if k in raw}
    cfg.setdefault("output_directory", "output/text_causal_language_modeling_config")
    cfg.setdefault("experiment_name", "fixture-experiment")
    dropped = {k for k in raw if k not in TOP and k not in SECTIONS}
    for section, keys in SECTIONS.items():
        values = dict(DEFAULTS.get(section, {}))
        for key, value in (raw.get(section) or {}).items():
            if key in keys:
                values[key] = value
            else:
                dropped.add(key)
        cfg[section] = values
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if section in SECTIONS and name in SECTIONS[section]:
            old = cfg[section].get(name)
            cfg[section][name] = type(old)(value) if isinstance(old, (int, float)) and \
                not isinstance(old, bool) else (value.lower() in ("1", "true", "yes") if isinstance(old, bool)
                                                 else value)
    return cfg, dropped


class TqdmLine:
    """LLM Studio's progress lines: tqdm with `ascii=True` written through the logger, as v1.2.0 logs them:
    `train loss: 6.11:   4%|4         | 4/90 [00:00<00:02, 33.04it/s]` (charset " 123456789#", 10 cells)."""

    CHARSET = " 123456789#"

    def __init__(self, total, desc):
        self.total, self.desc, self.start = total, desc, time.monotonic()

    def bar(self, frac):
        full, part = divmod(int(frac * 10 * 10), 10)
        if full >= 10:
            return "#" * 10
        return ("#" * full + self.CHARSET[part]).ljust(10)

    def close(self, n):
        """tqdm's close() draws the last state once more (LLM Studio logs it twice)."""
        self.log(n)

    def log(self, n):
        elapsed = time.monotonic() - self.start
        frac = n / self.total if self.total else 1.0
        rate = n / elapsed if elapsed > 0 and n else None
        fmt = lambda s: f"{int(s // 60):02d}:{int(s % 60):02d}"  # noqa: E731
        if rate is None:
            rate_txt, eta_txt = "?it/s", "?"
        else:
            rate_txt = f"{rate:.2f}it/s" if rate >= 1 else f"{1 / rate:.2f}s/it"
            eta_txt = fmt((self.total - n) / rate)
        logger.info(f"{self.desc}: {int(frac * 100):3d}%|{self.bar(frac)}| {n}/{self.total} "
                    f"[{fmt(elapsed)}<{eta_txt}, {rate_txt}]")


def setup_logging(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s - %(levelname)s: %(message)s")
    logger.setLevel(logging.INFO)
    for handler in (logging.StreamHandler(), logging.FileHandler(os.path.join(out_dir, "logs.log"))):
        handler.setFormatter(fmt)
        logger.addHandler(handler)


def save_checkpoint(out_dir, size_mb):
    path = os.path.join(out_dir, "checkpoint.pth")
    chunk = os.urandom(1 << 20)
    with open(path + ".tmp", "wb") as fh:
        for _ in range(max(0, size_mb)):
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(path + ".tmp", path)


def run(cfg):
    start = time.time()
    out_dir = cfg["output_directory"]
    step_s = float(os.environ.get("LABCTL_FIXTURE_STEP_SECONDS", "0.02"))
    ckpt_mb = int(os.environ.get("LABCTL_FIXTURE_CHECKPOINT_MB", "1"))
    tr = cfg["training"]
    seed = cfg["environment"].get("seed", -1)
    seed = random.randint(0, 10**6) if seed in (-1, None) else seed
    logger.info("Problem Type: text_causal_language_modeling")
    logger.info(f"Global random seed: {seed}")
    logger.info("Preparing the data...")
    logger.info("Preparing train and validation data")
    table = pq.read_table(cfg["dataset"]["train_dataframe"])
    for column in ("instruction", "output"):
        if column not in table.column_names:
            raise KeyError(f"Column '{column}' not found in train DataFrame")
    rows = table.num_rows
    val_rows = max(1, int(rows * float(cfg["dataset"].get("validation_size", 0.01))))
    rows = max(1, rows - val_rows)
    if not cfg["environment"].get("gpus"):
        logger.warning("Training on CPU. This will be slow.")
    logger.info(f"Number of observations in train dataset: {rows}")
    logger.info(f"Number of observations in validation dataset: {val_rows}")
    dtype = cfg["architecture"].get("backbone_dtype", "int4")
    logger.info(f"Using {dtype} for backbone")
    logger.info(f"Loading {cfg.get('llm_backbone', 'h2oai/h2ogpt-4096-llama2-7b')}. This may take a while.")
    logger.info(f"Loaded {cfg.get('llm_backbone', 'h2oai/h2ogpt-4096-llama2-7b')}.")
    logger.info(f"Enough space available for saving model weights.Required space: {ckpt_mb * 1.03:.2f}MB, "
                f"Available space: 100000.00MB.")
    with open(os.path.join(out_dir, "cfg.yaml"), "w", encoding="utf-8") as fh:
        yaml.safe_dump(cfg, fh, sort_keys=False)
    epochs = int(tr.get("epochs", 1))
    steps = max(1, rows // max(1, int(tr.get("batch_size", 2))))
    metric_name = cfg["prediction"].get("metric", "Perplexity")
    higher_is_better = metric_name in ("BLEU", "GPT")
    best = float("-inf") if higher_is_better else float("inf")
    for epoch in range(1, epochs + 1):
        logger.info(f"Training Epoch: {epoch} / {epochs}")
        logger.info(f"Evaluation step: {steps}")
        bar = TqdmLine(steps, "train loss")
        every = max(steps // 20, 1)
        loss = 2.0 / epoch
        bar.log(0)
        for it in range(1, steps + 1):
            time.sleep(step_s)
            loss = max(0.05, loss * 0.98)
            if it % every == 0 or it == steps:
                bar.desc = f"train loss: {loss:.2f}"
                bar.log(it)
        bar.close(steps)
        if not tr.get("save_best_checkpoint"):
            logger.info(f"Saving last model checkpoint to {out_dir}")
            save_checkpoint(out_dir, ckpt_mb)
        logger.info("Starting validation inference")
        val = TqdmLine(val_rows, "validation progress")
        val.log(0)
        val.log(val_rows)
        val.close(val_rows)
        metric = 1.0 / (1.0 + loss) if higher_is_better else loss * 1.1
        logger.info(f"Mean validation loss: {loss:.5f}")
        logger.info(f"Validation {metric_name}: {metric:.5f}")
        better = metric > best if higher_is_better else metric < best
        if tr.get("save_best_checkpoint") and better:
            logger.info(f"Saving best model checkpoint: val_{metric_name} {best:.5} -> {metric:.5} "
                        f"to {out_dir}")
            best = metric
            save_checkpoint(out_dir, ckpt_mb)
    with open(os.path.join(out_dir, "cfg.yaml"), "w", encoding="utf-8") as fh:
        yaml.safe_dump(cfg, fh, sort_keys=False)
    runtime = int(time.time() - start)
    hms = f"{runtime // 3600:02d}:{runtime % 3600 // 60:02d}:{runtime % 60:02d}"
    with open(os.path.join(out_dir, "flags.json"), "w", encoding="utf-8") as fh:
        json.dump({"status": "finished", "info": f"Runtime: {hms}"}, fh)


def main(argv=None):
    parser = argparse.ArgumentParser(description="")
    parser.add_argument("-C", "--config", help="config filename", default=None)
    parser.add_argument("-Y", "--yaml", help="yaml filename", default=None)
    args, rest = parser.parse_known_args(argv)
    overrides = {rest[i].lstrip("-"): rest[i + 1] for i in range(0, len(rest) - 1, 2)}
    if not args.yaml:
        parser.error("-Y cfg.yaml is required (the fixture has no Python configs)")
    cfg, dropped = load_config(args.yaml, overrides)
    setup_logging(cfg["output_directory"])
    if dropped:
        logger.warning(f"Keys {dropped} are not in the config.")
    try:
        run(cfg)
    except Exception:
        logger.exception("Exception occurred during the run:")
        return 0  # v1.2.0 single-GPU: the exception is logged and the script exits 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
