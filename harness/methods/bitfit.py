"""BitFit: only the bias terms train (optionally also the normalisation scales, for models built without biases
such as Llama). The trial saves the whole model; nothing to merge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.methods._base import AppliedMethod, MethodConfig, check_bool, count_parameters

__all__ = ["BitfitConfig", "apply"]


@dataclass(frozen=True)
class BitfitConfig(MethodConfig):
    """include_norm_weights: also train LayerNorm/RMSNorm scales (BitFit's spirit on bias-free models)."""

    include_norm_weights: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_bool("include_norm_weights", self.include_norm_weights)


def apply(model: Any, cfg: BitfitConfig, *, total_steps: int | None = None) -> AppliedMethod:
    norms = _norm_modules(model) if cfg.include_norm_weights else set()
    trained = []
    for name, param in model.named_parameters():
        module = name.rsplit(".", 1)[0]
        train = name.endswith(".bias") or module in norms
        param.requires_grad_(train)
        if train:
            trained.append(name)
    if not trained:
        raise ConfigError(
            "method.name", "bitfit", "this model has no bias parameters (Llama-style models are built without "
            "them): use a model with biases (Qwen2, GPT-2) or set method.include_norm_weights=true"
        )  # fmt: skip
    trainable, total = count_parameters(model)
    what = f"{len(trained)} tensors (biases{' + norm scales' if norms else ''})"
    return AppliedMethod(model, trainable, total, mergeable=True, info={"trained": what})


def _norm_modules(model: Any) -> set[str]:
    import torch.nn as nn

    return {
        name for name, module in model.named_modules()
        if isinstance(module, nn.LayerNorm) or type(module).__name__.endswith(("RMSNorm", "LayerNorm"))
    }  # fmt: skip
