"""Full fine-tuning: every weight trains; save_pretrained writes the whole model; nothing to merge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.methods._base import AppliedMethod, MethodConfig, check_bool, count_parameters

__all__ = ["FullConfig", "apply"]


@dataclass(frozen=True)
class FullConfig(MethodConfig):
    """gradient_checkpointing: trade compute for activation memory (worth it on large models only)."""

    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_bool("gradient_checkpointing", self.gradient_checkpointing)


def apply(model: Any, cfg: FullConfig, *, total_steps: int | None = None) -> AppliedMethod:
    for param in model.parameters():
        param.requires_grad_(True)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    trainable, total = count_parameters(model)
    return AppliedMethod(model, trainable, total, mergeable=True, info={"trained": "all parameters"})
