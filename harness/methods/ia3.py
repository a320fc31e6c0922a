"""IA3 (peft): learned vectors that rescale the activations of a few linears (keys, values and the MLP's
down projection by default). Tiny (one value per channel) and mergeable into the base weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.methods._base import AppliedMethod, MethodConfig, check_bool, count_parameters, jsonable
from harness.methods.targets import check_target_spec, linear_modules, matching_modules, resolve_target_modules

__all__ = ["Ia3MethodConfig", "apply"]


@dataclass(frozen=True)
class Ia3MethodConfig(MethodConfig):
    """target_modules: null = peft's per-architecture default (keys, values, MLP down projection), else a preset
    or names. feedforward_modules (scaled on their input, not their output): null = the targets that are MLP
    layers, else names (a subset of the targets).
    """

    target_modules: str | tuple[str, ...] | None = None
    feedforward_modules: tuple[str, ...] | None = None
    init_ia3_weights: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.target_modules is not None:
            check_target_spec(self.target_modules)
            if not isinstance(self.target_modules, str):
                object.__setattr__(self, "target_modules", tuple(self.target_modules))
        if self.feedforward_modules is not None:
            if isinstance(self.feedforward_modules, str):
                raise ConfigError("feedforward_modules", self.feedforward_modules, "must be a list of module names or null")
            check_target_spec(self.feedforward_modules, key="feedforward_modules")
            object.__setattr__(self, "feedforward_modules", tuple(self.feedforward_modules))
        check_bool("init_ia3_weights", self.init_ia3_weights)


def apply(model: Any, cfg: Ia3MethodConfig, *, total_steps: int | None = None) -> AppliedMethod:
    from peft import IA3Config, get_peft_model
    from transformers.pytorch_utils import Conv1D

    targets = feedforward = None
    if cfg.target_modules is not None:
        targets = list(resolve_target_modules(model, cfg.target_modules))
        if cfg.feedforward_modules is not None:
            feedforward = list(resolve_target_modules(model, cfg.feedforward_modules, key="method.feedforward_modules"))
        else:
            mlp = set(matching_modules(model, resolve_target_modules(model, "mlp")))
            feedforward = [t for t in targets if set(matching_modules(model, [t])) <= mlp]
        if not set(feedforward) <= set(targets):
            raise ConfigError("method.feedforward_modules", feedforward, f"must be among the target modules {targets}")
    elif cfg.feedforward_modules is not None:
        raise ConfigError("method.feedforward_modules", list(cfg.feedforward_modules), "needs explicit target_modules")
    try:
        peft_config = IA3Config(
            task_type="CAUSAL_LM",
            target_modules=targets,
            feedforward_modules=feedforward,
            init_ia3_weights=cfg.init_ia3_weights,
            # GPT-2 style Conv1D layers store weights transposed.
            fan_in_fan_out=any(isinstance(m, Conv1D) for m in linear_modules(model).values()),
        )
        peft_model = get_peft_model(model, peft_config)
    except ValueError as exc:  # peft has no default targets for this architecture
        raise ConfigError("method.target_modules", None, f"peft has no IA3 default for this model ({exc}); name them") from exc
    trainable, total = count_parameters(peft_model)
    resolved = peft_model.peft_config["default"]
    info = {
        "target_modules": sorted(jsonable(resolved.target_modules)),
        "feedforward_modules": sorted(jsonable(resolved.feedforward_modules)),
        "peft_config": jsonable(resolved.to_dict()),
    }
    return AppliedMethod(peft_model, trainable, total, mergeable=True, info=info)
