"""Freeze tuning: the last N decoder layers train, everything else is frozen (LLaMA-Factory's `freeze`).
The trial saves the whole model; nothing to merge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.methods._base import AppliedMethod, MethodConfig, check_positive_int, count_parameters

__all__ = ["FreezeConfig", "apply", "decoder_layers"]


@dataclass(frozen=True)
class FreezeConfig(MethodConfig):
    """num_trainable_layers: how many of the last decoder layers train. extra_modules: other modules that train
    too, by name (e.g. [model.norm] or [lm_head]; with tied embeddings lm_head is also the input embedding)."""

    num_trainable_layers: int = 1
    extra_modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("num_trainable_layers", self.num_trainable_layers)
        if not isinstance(self.extra_modules, (list, tuple)) or not all(isinstance(m, str) and m for m in self.extra_modules):
            raise ConfigError("extra_modules", self.extra_modules, "must be a list of module names")
        object.__setattr__(self, "extra_modules", tuple(self.extra_modules))


def decoder_layers(model: Any) -> tuple[str, list[Any]]:
    """(name, layers) of the model's stack of decoder layers: the ModuleList as long as config.num_hidden_layers."""
    import torch.nn as nn

    n = model.config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return name, list(module)
    raise ConfigError("method.name", "freeze", f"found no list of {n} decoder layers in {type(model).__name__}")


def apply(model: Any, cfg: FreezeConfig, *, total_steps: int | None = None) -> AppliedMethod:
    stack, layers = decoder_layers(model)
    if cfg.num_trainable_layers > len(layers):
        raise ConfigError("method.num_trainable_layers", cfg.num_trainable_layers, f"the model has {len(layers)} layers")
    modules = dict(model.named_modules())
    missing = [m for m in cfg.extra_modules if m not in modules]
    if missing:
        top = ", ".join(n for n in modules if n and n.count(".") <= 1 and not n.startswith(stack))
        raise ConfigError("method.extra_modules", list(cfg.extra_modules), f"{', '.join(missing)} not in the model; it has: {top}")
    for param in model.parameters():
        param.requires_grad_(False)
    first = len(layers) - cfg.num_trainable_layers
    for module in layers[first:] + [modules[m] for m in cfg.extra_modules]:
        for param in module.parameters():
            param.requires_grad_(True)
    trainable, total = count_parameters(model)
    info = {"trained_layers": [f"{stack}.{i}" for i in range(first, len(layers))], "extra_modules": list(cfg.extra_modules)}
    return AppliedMethod(model, trainable, total, mergeable=True, info=info)
