"""Render LLM Studio's experiment config (`cfg.yaml`) from templates/llmstudio/ for one release.

One template covers every release labctl knows; settings renamed between releases are mapped
(`save_best_checkpoint: true` ↔ `save_checkpoint: best`); a key the installed release does not know would
be dropped silently by LLM Studio, so it is an error here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import yaml

from labctl.config.experiment import Experiment
from labctl.errors import ConfigError
from labctl.experiment import llmstudio_keys as K
from labctl.paths import repo_data


def _y(value: Any) -> str:
    """A YAML flow scalar/sequence (floats keep their decimal point)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def template_dir() -> Path:
    """Where the LLM Studio config template lives."""
    return repo_data("templates", "llmstudio")


def flatten(cfg: dict[str, Any]) -> dict[str, Any]:
    """{"training": {"epochs": 3}, "problem_type": …} → {"training.epochs": 3, "problem_type": …}."""
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            for sub, item in value.items():
                flat[f"{key}.{sub}"] = item
        else:
            flat[key] = value
    return flat


def _check_settings(exp: Experiment, version: tuple[int, int, int], tag: str) -> None:
    if exp.training.save_checkpoint == "disable" and version < (1, 6, 0):
        raise ConfigError(
            f"save_checkpoint: disable does not exist in LLM Studio {tag}",
            where="experiment: training.save_checkpoint",
            fix="use best or last, or LLM Studio ≥ v1.6.0",
        )
    if exp.llmstudio.mixed_precision_dtype and version < (1, 5, 0):
        raise ConfigError(
            f"mixed_precision_dtype does not exist in LLM Studio {tag} (it would be dropped)",
            where="experiment: llmstudio.mixed_precision_dtype",
            fix="remove it, or use ≥ v1.5.0",
        )
    impl = exp.llmstudio.attention_implementation
    if impl and version < (1, 9, 0) and impl not in ("flash_attention_2", "auto", "sdpa"):
        raise ConfigError(
            f"attention_implementation {impl} cannot be expressed in LLM Studio {tag}",
            where="experiment: llmstudio.attention_implementation",
        )


def render_config(
    exp: Experiment,
    *,
    version: str,
    output_directory: str,
    train_dataframe: str,
    experiment_name: str | None = None,
) -> str:
    """The cfg.yaml text for `version`; raises ConfigError for any key that release would drop."""
    try:
        ver = K.parse_version(version)
    except ValueError as exc:
        raise ConfigError(str(exc), where="LLM Studio version") from exc
    if not K.supported(version):
        raise ConfigError(
            f"LLM Studio {version} is outside the releases labctl knows "
            f"(v{'.'.join(map(str, K.OLDEST_KNOWN))}–v{'.'.join(map(str, K.NEWEST_KNOWN))})",
            where="LLM Studio version",
        )
    _check_settings(exp, ver, version)
    impl = exp.llmstudio.attention_implementation
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["y"] = _y
    template = env.get_template("cfg.yaml.j2")
    text = template.render(
        exp=exp,
        ver=ver,
        experiment_name=experiment_name or exp.name,
        output_directory=output_directory,
        train_dataframe=train_dataframe,
        gpus=[str(i) for i in range(exp.gpus_per_host)],
        attention_implementation=impl or "auto",
        mixed_precision_dtype=exp.llmstudio.mixed_precision_dtype or "float16",
    )
    cfg = yaml.safe_load(text)
    cfg = _apply_extra(cfg, exp.llmstudio.extra)
    unknown = sorted(set(flatten(cfg)) - K.keys_for(version))
    if unknown:
        raise ConfigError(
            f"LLM Studio {version} would silently drop {', '.join(unknown)}",
            where="rendered LLM Studio config",
            fix="remove these keys or use a release that has them (see templates/llmstudio/)",
        )
    if exp.llmstudio.extra:
        text = yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None, width=10_000)
    return text


def _apply_extra(cfg: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for dotted, value in extra.items():
        section, _, key = dotted.rpartition(".")
        if section:
            cfg.setdefault(section, {})[key] = value
        else:
            cfg[key] = value
    return cfg
