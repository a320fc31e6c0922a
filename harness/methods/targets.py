"""Target-module presets (`qv`, `qkvo`, `mlp`, `all-linear`) resolved against the loaded model's real module names.

A preset is a set of roles; each role lists the module names that play it in common architectures (Llama, Qwen2,
Mistral, GPT-2, GPT-NeoX, Phi, ...). Resolution keeps the names that exist in the model and returns them in the
form peft matches (a module is targeted when its full name equals a pattern or ends with "." + pattern), so the
resolved list is exactly what peft will wrap. A preset or an explicit name that matches nothing is a ConfigError
that lists the linear modules the model does have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.errors import ConfigError

__all__ = ["PRESETS", "check_target_spec", "linear_modules", "matching_modules", "resolve_target_modules"]

# Role -> module names that play it. "attn.c_proj" / "mlp.c_proj": GPT-2 uses one leaf name for both projections.
_ROLES: dict[str, tuple[str, ...]] = {
    "q": ("q_proj", "query", "wq"),
    "k": ("k_proj", "key", "wk"),
    "v": ("v_proj", "value", "wv"),
    "o": ("o_proj", "out_proj", "wo", "attn.c_proj", "attention.dense", "self_attn.dense"),
    "qkv": ("c_attn", "qkv_proj", "query_key_value", "Wqkv"),  # fused query/key/value projections
    "mlp": (
        "gate_proj", "up_proj", "down_proj", "gate_up_proj",
        "c_fc", "mlp.c_proj", "fc1", "fc2", "w1", "w2", "w3", "dense_h_to_4h", "dense_4h_to_h",
    ),
}  # fmt: skip

# Preset -> roles. None means every linear layer except the output head (peft's "all-linear").
# A model with a fused qkv projection cannot adapt q and v alone: `qv` then targets the fused layer.
PRESETS: dict[str, tuple[str, ...] | None] = {
    "qv": ("q", "v", "qkv"),
    "qkvo": ("q", "k", "v", "o", "qkv"),
    "mlp": ("mlp",),
    "all-linear": None,
}


def check_target_spec(value: object, *, key: str = "target_modules") -> None:
    """Config-time check (no model yet): a known preset, or a non-empty list of non-empty names. ``key`` is
    relative to the method's config (harness.schema.from_dict adds ``method.``)."""
    if isinstance(value, str):
        if value not in PRESETS:
            raise ConfigError(key, value, f"must be a preset ({', '.join(PRESETS)}) or a list of module names")
        return
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(key, value, "must be a preset name or a non-empty list of module names")


def linear_modules(model: Any) -> dict[str, Any]:
    """Full name -> module for every linear layer (nn.Linear, GPT-2's Conv1D, bitsandbytes layers), output head excluded."""
    import torch.nn as nn
    from transformers.pytorch_utils import Conv1D

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, (nn.Linear, Conv1D)) and module is not head and name
    }


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or name.endswith("." + pattern)


def matching_modules(model: Any, patterns: Sequence[str]) -> dict[str, Any]:
    """The linear modules peft will wrap for these (resolved) patterns."""
    return {n: m for n, m in linear_modules(model).items() if any(_matches(n, p) for p in patterns)}


def resolve_target_modules(model: Any, spec: str | Sequence[str], *, key: str = "method.target_modules") -> tuple[str, ...]:
    """Preset name or explicit names -> the module-name patterns that exist in `model`, in a stable order."""
    names = list(linear_modules(model))  # model order, so the error lists layers as a reader expects
    available = _leaf_summary(names)
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ConfigError(key, spec, f"unknown preset; presets: {', '.join(PRESETS)}, or a list of module names")
        roles = PRESETS[spec]
        if roles is None:
            resolved = tuple(dict.fromkeys(n.rsplit(".", 1)[-1] for n in names))
        else:
            candidates = [p for role in roles for p in _ROLES[role]]
            resolved = tuple(p for p in candidates if any(_matches(n, p) for n in names))
        if not resolved:
            raise ConfigError(key, spec, f"preset matches no linear module in this model; it has: {available}")
        return resolved
    wanted = tuple(spec)
    missing = [p for p in wanted if not any(_matches(n, p) for n in names)]
    if missing:
        raise ConfigError(
            key, list(wanted), f"{', '.join(missing)} match(es) no linear module; this model has: {available} "
            f"(or use a preset: {', '.join(PRESETS)})"
        )  # fmt: skip
    return wanted


def _leaf_summary(names: Sequence[str]) -> str:
    """Distinct module names with their parent ("self_attn.q_proj"), so GPT-2's two c_proj layers stay apart."""
    leaves = dict.fromkeys(".".join(n.split(".")[-2:]) for n in names)
    return ", ".join(leaves) or "(no linear modules)"
