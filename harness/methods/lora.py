"""LoRA and its variants on peft's LoraConfig: lora, dora (weight-decomposed), rslora (rank-stabilised scaling),
loraplus (B learns `loraplus_lr_ratio` times faster than A, via peft's LoRA+ optimizer).

They share one config: the method name only fixes which variant flag must be on. qlora reuses the config and
`build_lora` on a 4-bit model (see qlora.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.methods._base import (
    AppliedMethod,
    MethodConfig,
    check_bool,
    check_choice,
    check_fraction,
    check_positive_float,
    check_positive_int,
    count_parameters,
    jsonable,
)
from harness.methods.targets import check_target_spec, matching_modules, resolve_target_modules

__all__ = ["LoraMethodConfig", "apply", "build_lora", "lora_closed_form", "optimizer"]

# Initialisations that leave the base weights untouched (PiSSA/OLoRA rewrite them and need a conversion on save).
_INITS = (True, False, "gaussian", "orthogonal")

# Variant -> (flag that must be set, what to write). `lora` itself may combine any of them.
_REQUIRED_FLAG = {
    "dora": ("use_dora", "use_dora=true"),
    "rslora": ("use_rslora", "use_rslora=true"),
    "loraplus": ("loraplus_lr_ratio", "a loraplus_lr_ratio >= 1"),
}


def check_lora_knobs(cfg: Any) -> None:
    """Checks shared by every LoRA-shaped config (lora family, adalora); freezes a target list to a tuple."""
    if cfg.lora_alpha is not None:
        check_positive_float("lora_alpha", cfg.lora_alpha)
    check_positive_float("alpha_ratio", cfg.alpha_ratio)
    check_fraction("lora_dropout", cfg.lora_dropout)
    check_target_spec(cfg.target_modules)
    if not isinstance(cfg.target_modules, str):
        object.__setattr__(cfg, "target_modules", tuple(cfg.target_modules))


@dataclass(frozen=True)
class LoraMethodConfig(MethodConfig):
    """LoRA knobs, as in peft.LoraConfig.

    lora_alpha: scaling numerator; when null it is `alpha_ratio * r` (so a rank sweep keeps alpha/r fixed).
    target_modules: a preset (qv, qkvo, mlp, all-linear) or a list of module names.
    use_rslora: scale by alpha/sqrt(r) instead of alpha/r. use_dora: add DoRA's magnitude vector.
    loraplus_lr_ratio: learning-rate ratio of B over A (LoRA+); null for plain AdamW.
    """

    r: int = 8
    lora_alpha: float | None = None
    alpha_ratio: float = 2.0
    lora_dropout: float = 0.0
    target_modules: str | tuple[str, ...] = "qv"
    init_lora_weights: bool | str = True
    use_rslora: bool = False
    use_dora: bool = False
    loraplus_lr_ratio: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("r", self.r)
        check_lora_knobs(self)
        check_choice("init_lora_weights", self.init_lora_weights, _INITS)
        check_bool("use_rslora", self.use_rslora)
        check_bool("use_dora", self.use_dora)
        if self.loraplus_lr_ratio is not None:
            check_positive_float("loraplus_lr_ratio", self.loraplus_lr_ratio)
            if self.loraplus_lr_ratio < 1:
                raise ConfigError("loraplus_lr_ratio", self.loraplus_lr_ratio, "must be >= 1 (B learns faster than A)")
        flag = _REQUIRED_FLAG.get(self.name)
        if flag and not getattr(self, flag[0]):
            raise ConfigError(flag[0], getattr(self, flag[0]), f"method={self.name} needs {flag[1]}")

    @property
    def alpha(self) -> float:
        return float(self.lora_alpha) if self.lora_alpha is not None else self.alpha_ratio * self.r


def build_lora(model: Any, cfg: LoraMethodConfig) -> tuple[Any, dict[str, Any]]:
    """Wrap `model` with peft LoRA as `cfg` says. Returns the peft model and what to record about it."""
    from peft import LoraConfig, get_peft_model
    from transformers.pytorch_utils import Conv1D

    targets = resolve_target_modules(model, cfg.target_modules)
    wrapped = matching_modules(model, targets)
    peft_config = LoraConfig(
        task_type="CAUSAL_LM",
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(targets),
        init_lora_weights=cfg.init_lora_weights,
        use_rslora=cfg.use_rslora,
        use_dora=cfg.use_dora,
        # GPT-2 style Conv1D stores weights transposed; telling peft avoids its warning and silent flip.
        fan_in_fan_out=any(isinstance(m, Conv1D) for m in wrapped.values()),
    )
    closed_form = lora_closed_form(wrapped.values(), r=cfg.r, dora=cfg.use_dora)
    peft_model = get_peft_model(model, peft_config)
    info = {
        "target_modules": list(targets),
        "targeted_layers": len(wrapped),
        "lora_alpha": cfg.alpha,
        "scaling": cfg.alpha / (cfg.r**0.5 if cfg.use_rslora else cfg.r),
        "closed_form_trainable": closed_form,
        "peft_config": jsonable(peft_config.to_dict()),
    }
    return peft_model, info


def apply(model: Any, cfg: LoraMethodConfig, *, total_steps: int | None = None) -> AppliedMethod:
    peft_model, info = build_lora(model, cfg)
    trainable, total = count_parameters(peft_model)
    return AppliedMethod(peft_model, trainable, total, mergeable=True, info=info)


def optimizer(model: Any, cfg: LoraMethodConfig, *, learning_rate: float, weight_decay: float,
              optim: str = "adamw_torch", device: str = "cpu") -> Any:
    """LoRA+: peft's parameter groups, B (and DoRA magnitudes) at `loraplus_lr_ratio` x the rate of A, in the
    optimizer `optim` names (built as the HF Trainer would build it). None without LoRA+."""
    if cfg.loraplus_lr_ratio is None:
        return None
    from peft.optimizers import create_loraplus_optimizer

    from harness.optimizers import optimizer_class

    optimizer_cls, kwargs = optimizer_class(optim, learning_rate=learning_rate, device=device)
    kwargs = {k: v for k, v in kwargs.items() if k != "lr"}
    return create_loraplus_optimizer(
        model,
        optimizer_cls,
        lr=learning_rate,
        loraplus_lr_ratio=cfg.loraplus_lr_ratio,
        loraplus_weight_decay=weight_decay,
        **kwargs,
    )


def lora_closed_form(modules: Any, *, r: int, dora: bool = False) -> int:
    """Trainable parameters of LoRA on these linear layers: r * (d_in + d_out) each, + d_out for DoRA's magnitude."""
    total = 0
    for module in modules:
        d_in, d_out = _dims(module)
        total += r * (d_in + d_out) + (d_out if dora else 0)
    return total


def _dims(module: Any) -> tuple[int, int]:
    if hasattr(module, "in_features"):  # nn.Linear and bitsandbytes layers
        return module.in_features, module.out_features
    d_in, d_out = module.weight.shape  # GPT-2's Conv1D stores (in, out)
    return int(d_in), int(d_out)

