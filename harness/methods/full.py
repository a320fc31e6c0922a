"""Full fine-tuning: every weight trains; save_pretrained writes the whole model; nothing to merge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.methods._base import AppliedMethod, MethodConfig, count_parameters

__all__ = ["FullConfig", "apply"]


@dataclass(frozen=True)
class FullConfig(MethodConfig):
    """No knobs of its own (gradient checkpointing is train.gradient_checkpointing, for every method)."""


def apply(model: Any, cfg: FullConfig, *, total_steps: int | None = None) -> AppliedMethod:
    for param in model.parameters():
        param.requires_grad_(True)
    trainable, total = count_parameters(model)
    return AppliedMethod(model, trainable, total, mergeable=True, info={"trained": "all parameters"})
