"""Fine-tuning methods, chosen by the Hydra `method` group: one registry entry per name, one file per implementation.

Usage (what harness.train does):

    cfg = method_config_from_dict(method_dict)                 # typed, checked; fast, imports nothing heavy
    model = AutoModelForCausalLM.from_pretrained(path, **model_load_kwargs(cfg, device=device))
    applied = apply_method(model, cfg, total_steps=max_steps)  # AppliedMethod: model, param counts, info
    opt = build_optimizer(applied.model, cfg, learning_rate=lr, weight_decay=wd, optim=name)  # or None: the trainer's
    ... train; call applied.on_optimizer_step(step) after each optimizer step when it is set ...
    applied.model.save_pretrained(out)                         # adapter (peft) or full weights
    gen_model = prepare_for_generation(applied.model, cfg)     # merged where the method allows it

Everything heavy (torch, peft, transformers, bitsandbytes) is imported inside the functions that need it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from harness.errors import ConfigError
from harness.methods import adalora, bitfit, freeze, full, ia3, lora, prompt_learning, qlora
from harness.methods._base import AppliedMethod, Method, MethodConfig, MethodUnavailable
from harness.methods.targets import PRESETS, resolve_target_modules
from harness.schema import from_dict

__all__ = [
    "METHODS",
    "PRESETS",
    "AppliedMethod",
    "Method",
    "MethodConfig",
    "MethodUnavailable",
    "apply_method",
    "build_optimizer",
    "load_trained",
    "method_config_from_dict",
    "model_load_kwargs",
    "prepare_for_generation",
    "resolve_target_modules",
    "trainer_callbacks",
]

# The registry, in the order users meet the methods. A new method is a file plus one entry here.
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("full", full.FullConfig, full.apply, mergeable=True, saves_adapter=False,
               summary="full fine-tuning: every weight trains"),
        Method("lora", lora.LoraMethodConfig, lora.apply, mergeable=True, saves_adapter=True,
               summary="LoRA: low-rank A/B updates on the target linears", optimizer=lora.optimizer),
        Method("dora", lora.LoraMethodConfig, lora.apply, mergeable=True, saves_adapter=True,
               summary="DoRA: LoRA on the direction plus a trained magnitude vector", optimizer=lora.optimizer),
        Method("rslora", lora.LoraMethodConfig, lora.apply, mergeable=True, saves_adapter=True,
               summary="rsLoRA: LoRA scaled by alpha/sqrt(r)", optimizer=lora.optimizer),
        Method("loraplus", lora.LoraMethodConfig, lora.apply, mergeable=True, saves_adapter=True,
               summary="LoRA+: B learns loraplus_lr_ratio times faster than A", optimizer=lora.optimizer),
        Method("qlora", qlora.QloraConfig, qlora.apply, mergeable=False, saves_adapter=True,
               summary="QLoRA: LoRA on a 4-bit (NF4) base, paged 8-bit AdamW", load_kwargs=qlora.load_kwargs,
               optimizer=lora.optimizer, load=qlora.load),
        Method("adalora", adalora.AdaloraMethodConfig, adalora.apply, mergeable=True, saves_adapter=True,
               summary="AdaLoRA: SVD-shaped LoRA pruned from init_r to target_r during training"),
        Method("ia3", ia3.Ia3MethodConfig, ia3.apply, mergeable=True, saves_adapter=True,
               summary="IA3: learned rescaling vectors on keys, values and the MLP"),
        Method("prefix", prompt_learning.PrefixConfig, prompt_learning.apply, mergeable=False, saves_adapter=True,
               summary="prefix tuning / P-Tuning v2: trained key/value prefixes in every layer"),
        Method("prompt", prompt_learning.PromptConfig, prompt_learning.apply, mergeable=False, saves_adapter=True,
               summary="prompt tuning: trained soft-prompt embeddings"),
        Method("ptuning", prompt_learning.PtuningConfig, prompt_learning.apply, mergeable=False, saves_adapter=True,
               summary="P-tuning: soft prompt produced by a small MLP/LSTM encoder"),
        Method("bitfit", bitfit.BitfitConfig, bitfit.apply, mergeable=True, saves_adapter=False,
               summary="BitFit: only the bias terms train"),
        Method("freeze", freeze.FreezeConfig, freeze.apply, mergeable=True, saves_adapter=False,
               summary="freeze tuning: only the last N decoder layers train"),
    )
}  # fmt: skip

# Knobs that were a method's and are now the train group's, for every method.
_MOVED = {"optim": "train.optim", "gradient_checkpointing": "train.gradient_checkpointing"}


def method_config_from_dict(d: Mapping[str, Any] | None) -> MethodConfig:
    """The `method` group as a plain dict (with "name") -> its typed, checked config. Raises ConfigError.

    `name` picks the schema (the method's config class); a key that is not one of its knobs is named with the
    method's knobs (or where it moved); then the generic `harness.schema.from_dict` checks types and values.
    """
    d = {} if d is None else d
    if not isinstance(d, Mapping):
        raise ConfigError("method", d, "expected a mapping: name and the method's knobs")
    name = d.get("name")
    if not isinstance(name, str) or name not in METHODS:
        raise ConfigError("method.name", name, f"unknown method; choices: {', '.join(METHODS)}")
    cls = METHODS[name].config_cls
    known = [f.name for f in dataclasses.fields(cls)]
    for key in d:
        if key in _MOVED and key not in known:
            raise ConfigError(f"method.{key}", d[key], f"moved to {_MOVED[key]} (it applies to every method); set that instead")
        if key not in known:
            raise ConfigError(f"method.{key}", d[key], f"not a knob of method={name}; its knobs: {', '.join(known)}")
    return from_dict(cls, d, "method")


def model_load_kwargs(cfg: MethodConfig, *, device: str = "cpu") -> dict[str, Any]:
    """Extra `from_pretrained` kwargs (4-bit quantization for qlora). Raises MethodUnavailable if it cannot run here."""
    load_kwargs = METHODS[cfg.name].load_kwargs
    return load_kwargs(cfg, device=device) if load_kwargs else {}


def apply_method(model: Any, cfg: MethodConfig, *, total_steps: int | None = None) -> AppliedMethod:
    """Make `model` train as the method says. `total_steps` (the run's optimizer steps) drives AdaLoRA's schedule.

    A target module that matches nothing, or a model the method cannot use, raises ConfigError before training.
    """
    return METHODS[cfg.name].apply(model, cfg, total_steps=total_steps)


def build_optimizer(model: Any, cfg: MethodConfig, *, learning_rate: float, weight_decay: float = 0.0,
                    optim: str = "adamw_torch", device: str = "cpu") -> Any:
    """The method's own optimizer (LoRA+'s parameter groups, as an `optim` optimizer), or None: then the trainer
    builds `optim` (train.optim, resolved by harness.optimizers.resolve_optim) over the trainable parameters."""
    make = METHODS[cfg.name].optimizer
    if make is None:
        return None
    return make(model, cfg, learning_rate=learning_rate, weight_decay=weight_decay, optim=optim, device=device)


def trainer_callbacks(applied: AppliedMethod) -> list[Any]:
    """HF Trainer callbacks the method needs (AdaLoRA's rank allocation after each optimizer step)."""
    if applied.on_optimizer_step is None:
        return []
    from transformers import TrainerCallback

    hook = applied.on_optimizer_step

    class _MethodStepCallback(TrainerCallback):
        def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            hook(state.global_step)

    return [_MethodStepCallback()]


def prepare_for_generation(model: Any, cfg: MethodConfig) -> Any:
    """The model to generate with, in eval mode: the adapter merged into the base (merge_and_unload) where the
    method allows it, so generation runs at base-model speed; else the peft model as is (prompt-based methods).

    Merging rewrites the base weights in place: save the adapter first.
    """
    spec = METHODS[cfg.name]
    if spec.saves_adapter and spec.mergeable and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model.eval()


def load_trained(base_model: Any, cfg: MethodConfig, path: str) -> Any:
    """Load what `applied.model.save_pretrained(path)` wrote: the adapter onto `base_model`, or the full weights."""
    spec = METHODS[cfg.name]
    if spec.load is not None:
        return spec.load(base_model, path)
    if spec.saves_adapter:
        from peft import PeftModel

        return PeftModel.from_pretrained(base_model, path)
    return type(base_model).from_pretrained(path, dtype=base_model.dtype)
