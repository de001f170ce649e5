"""The size of the `checkpoint.pth` LLM Studio writes: weights only (no optimizer), from the model's shape.

With a k-bit backbone and LoRA, LLM Studio saves the whole state dict: the 4-bit packed (or int8) linear
weights plus their quantisation state, every non-quantised parameter cast to fp32 (embeddings, lm_head,
norms), and the LoRA A/B matrices in fp32. With a float backbone the base weights keep their dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

from labctl.config.experiment import MAX_CHECKPOINT_BYTES, Experiment
from labctl.errors import ConfigError


@dataclass(frozen=True)
class Shape:
    """A Llama-style decoder."""

    layers: int
    hidden: int
    ffn: int
    vocab: int
    kv_heads_ratio: float = 1.0


KNOWN: dict[str, Shape] = {
    "h2oai/h2ogpt-4096-llama2-7b": Shape(32, 4096, 11008, 32000),
    "h2oai/h2ogpt-4096-llama2-13b": Shape(40, 5120, 13824, 32000),
    "h2oai/h2ogpt-4096-llama2-70b": Shape(80, 8192, 28672, 32000, kv_heads_ratio=1 / 8),
    "meta-llama/Llama-2-7b-hf": Shape(32, 4096, 11008, 32000),
    "meta-llama/Llama-2-13b-hf": Shape(40, 5120, 13824, 32000),
}

_BYTES = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0}
NF4_BLOCK = 64


def shape_for(exp: Experiment) -> Shape:
    """The backbone's shape: from the experiment if given, else the table of known backbones."""
    m = exp.model
    if m.layers and m.hidden and m.ffn and m.vocab:
        return Shape(m.layers, m.hidden, m.ffn, m.vocab, m.kv_heads_ratio or 1.0)
    if m.backbone in KNOWN:
        return KNOWN[m.backbone]
    raise ConfigError(
        f"labctl does not know the shape of {m.backbone}",
        where="experiment: model",
        fix="give model.layers/hidden/ffn/vocab, or emulate.checkpoint_bytes",
    )


def linear_params(s: Shape) -> int:
    """Parameters in the attention and MLP projections (the quantised ones)."""
    kv = int(s.hidden * s.kv_heads_ratio)
    attn = 2 * s.hidden * s.hidden + 2 * s.hidden * kv
    return s.layers * (attn + 3 * s.hidden * s.ffn)


def other_params(s: Shape) -> int:
    """Embeddings, lm_head and norms."""
    return 2 * s.vocab * s.hidden + (2 * s.layers + 1) * s.hidden


def lora_params(s: Shape, r: int) -> int:
    """LoRA A/B on every linear layer (lora_target_modules '' = all but the head)."""
    kv = int(s.hidden * s.kv_heads_ratio)
    per_layer = 2 * r * (s.hidden + s.hidden) + 2 * r * (s.hidden + kv) + 3 * r * (s.hidden + s.ffn)
    return s.layers * per_layer


def checkpoint_bytes(exp: Experiment) -> int:
    """Bytes of checkpoint.pth as LLM Studio would write it (before any emulate override/scale)."""
    s = shape_for(exp)
    dtype = exp.model.backbone_dtype
    lin, other = linear_params(s), other_params(s)
    lora = lora_params(s, exp.training.lora_r) * 4 if exp.training.lora else 0
    if dtype == "int4":
        base = lin / 2 + lin / NF4_BLOCK * 4 + other * 4
    elif dtype == "int8":
        rows = s.layers * (2 * s.hidden + 2 * int(s.hidden * s.kv_heads_ratio) + 2 * s.ffn + s.hidden)
        base = lin + rows * 4 + other * 4
    else:
        base = (lin + other) * _BYTES[dtype]
    return int(base + lora)


def emulated_checkpoint_bytes(exp: Experiment, where: str = "experiment") -> int:
    """What the emulator writes per checkpoint: the override, else the computed size × scale.

    Raises:
        ConfigError: the size passes MAX_CHECKPOINT_BYTES (naming the keys that make it; `where` is the file).
    """
    if exp.emulate.checkpoint_bytes:
        return exp.emulate.checkpoint_bytes
    size = checkpoint_bytes(exp) * exp.emulate.checkpoint_scale
    if size > MAX_CHECKPOINT_BYTES:
        raise ConfigError(
            f"the emulated checkpoint ({exp.model.backbone}'s size × {exp.emulate.checkpoint_scale:g}) "
            f"would be {size:.3g} bytes, more than the limit of {MAX_CHECKPOINT_BYTES >> 40} TiB",
            where=f"{where}: emulate.checkpoint_scale",
            fix="lower emulate.checkpoint_scale or the model's layers/hidden/ffn/vocab, or set "
            "emulate.checkpoint_bytes",
        )
    return max(1, int(size))
