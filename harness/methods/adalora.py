"""AdaLoRA (peft): SVD-shaped LoRA whose rank budget shrinks from `init_r` to `target_r` per layer on average,
keeping the singular values that matter. The budget schedule runs over the training steps, so apply needs the
run's step count, and the trainer must call `on_optimizer_step(step)` after each optimizer step (with the
gradients still present): `harness.methods.trainer_callbacks` does that for HF Trainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.methods._base import (
    AppliedMethod,
    MethodConfig,
    check_fraction,
    check_positive_int,
    count_parameters,
    jsonable,
)
from harness.methods.lora import check_lora_knobs
from harness.methods.targets import resolve_target_modules

__all__ = ["AdaloraMethodConfig", "apply"]


@dataclass(frozen=True)
class AdaloraMethodConfig(MethodConfig):
    """peft.AdaLoraConfig knobs.

    init_r / target_r: starting rank and average rank to prune down to. tinit / tfinal: steps of warm-up before
    pruning starts and of fine-tuning after it ends; deltaT: steps between budget re-allocations.
    total_step: null = the run's step count (train.max_steps), passed by the trainer.
    lora_alpha: null = alpha_ratio * init_r.
    """

    init_r: int = 12
    target_r: int = 4
    tinit: int = 0
    tfinal: int = 0
    deltaT: int = 1
    beta1: float = 0.85
    beta2: float = 0.85
    orth_reg_weight: float = 0.5
    total_step: int | None = None
    lora_alpha: float | None = None
    alpha_ratio: float = 2.0
    lora_dropout: float = 0.0
    target_modules: str | tuple[str, ...] = "qv"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("init_r", self.init_r)
        check_positive_int("target_r", self.target_r)
        if self.target_r > self.init_r:
            raise ConfigError("target_r", self.target_r, f"must be <= init_r ({self.init_r}): AdaLoRA only prunes rank")
        for key in ("tinit", "tfinal"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(key, value, "must be a non-negative integer (steps)")
        check_positive_int("deltaT", self.deltaT)
        check_fraction("beta1", self.beta1)
        check_fraction("beta2", self.beta2)
        if isinstance(self.orth_reg_weight, bool) or not isinstance(self.orth_reg_weight, (int, float)) or self.orth_reg_weight < 0:
            raise ConfigError("orth_reg_weight", self.orth_reg_weight, "must be a non-negative number")
        if self.total_step is not None:
            check_positive_int("total_step", self.total_step)
        check_lora_knobs(self)

    @property
    def alpha(self) -> float:
        return float(self.lora_alpha) if self.lora_alpha is not None else self.alpha_ratio * self.init_r


def _training_only_regularizer(adalora_model: Any) -> None:
    """peft adds `orth_reg_weight * ||P^T P - I||` to *every* returned loss, eval included, which would make
    AdaLoRA's eval loss incomparable with other methods'. Keep the penalty in training only; logits are unchanged."""
    with_penalty = adalora_model.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        return with_penalty(*args, **kwargs) if adalora_model.training else adalora_model.model(*args, **kwargs)

    adalora_model.forward = forward


def apply(model: Any, cfg: AdaloraMethodConfig, *, total_steps: int | None = None) -> AppliedMethod:
    from peft import AdaLoraConfig, get_peft_model

    total = cfg.total_step or total_steps
    if not total:
        raise ConfigError("method.total_step", None, "AdaLoRA needs the run's step count: pass total_steps or set it")
    if cfg.tinit >= total - cfg.tfinal:
        raise ConfigError(
            "method.tinit", cfg.tinit, f"leaves no pruning phase: need tinit < total_step - tfinal ({total} - {cfg.tfinal})"
        )
    targets = resolve_target_modules(model, cfg.target_modules)
    peft_config = AdaLoraConfig(
        task_type="CAUSAL_LM",
        init_r=cfg.init_r,
        target_r=cfg.target_r,
        tinit=cfg.tinit,
        tfinal=cfg.tfinal,
        deltaT=cfg.deltaT,
        beta1=cfg.beta1,
        beta2=cfg.beta2,
        orth_reg_weight=cfg.orth_reg_weight,
        total_step=total,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(targets),
    )
    peft_model = get_peft_model(model, peft_config)
    _training_only_regularizer(peft_model.base_model)
    trainable, total_params = count_parameters(peft_model)
    info = {"target_modules": list(targets), "total_step": total, "peft_config": jsonable(peft_config.to_dict())}

    def allocate(step: int) -> None:
        # Score singular values by sensitivity (needs .grad), then mask the least important to meet the budget.
        peft_model.base_model.update_and_allocate(step)

    return AppliedMethod(peft_model, trainable, total_params, mergeable=True, info=info, on_optimizer_step=allocate)
