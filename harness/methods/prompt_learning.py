"""Prompt-based methods (peft prompt learning): the base model is untouched and virtual tokens are learned.

- prefix: prefix tuning / P-Tuning v2 - trained key/value prefixes in every layer (optionally through an MLP,
  `prefix_projection`, as in the prefix-tuning paper; without it, P-Tuning v2's deep prompts).
- prompt: prompt tuning - trained input embeddings prepended to the prompt.
- ptuning: P-tuning - input virtual tokens produced by a small MLP/LSTM prompt encoder.

Nothing can be merged into the weights: generation runs through the peft model, which adds the virtual tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.methods._base import (
    AppliedMethod,
    MethodConfig,
    check_bool,
    check_choice,
    check_fraction,
    check_positive_int,
    count_parameters,
    jsonable,
)

__all__ = ["PrefixConfig", "PromptConfig", "PtuningConfig", "apply"]


@dataclass(frozen=True)
class PrefixConfig(MethodConfig):
    """num_virtual_tokens: prefix length per layer. prefix_projection: produce the prefixes with a 2-layer MLP
    of width encoder_hidden_size (null = the model's hidden size); training only, then folded away on save."""

    num_virtual_tokens: int = 16
    prefix_projection: bool = False
    encoder_hidden_size: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("num_virtual_tokens", self.num_virtual_tokens)
        check_bool("prefix_projection", self.prefix_projection)
        if self.encoder_hidden_size is not None:
            check_positive_int("encoder_hidden_size", self.encoder_hidden_size)


@dataclass(frozen=True)
class PromptConfig(MethodConfig):
    """num_virtual_tokens: soft-prompt length. prompt_tuning_init: random, or sample_vocab (start from the
    embeddings of random vocabulary tokens)."""

    num_virtual_tokens: int = 16
    prompt_tuning_init: str = "random"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("num_virtual_tokens", self.num_virtual_tokens)
        check_choice("prompt_tuning_init", self.prompt_tuning_init, ("random", "sample_vocab"))


@dataclass(frozen=True)
class PtuningConfig(MethodConfig):
    """num_virtual_tokens: soft-prompt length. The prompt encoder: encoder_reparameterization_type (mlp, lstm),
    encoder_hidden_size (null = the model's hidden size), encoder_num_layers, encoder_dropout."""

    num_virtual_tokens: int = 16
    encoder_reparameterization_type: str = "mlp"
    encoder_hidden_size: int | None = None
    encoder_num_layers: int = 2
    encoder_dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("num_virtual_tokens", self.num_virtual_tokens)
        check_choice("encoder_reparameterization_type", self.encoder_reparameterization_type, ("mlp", "lstm"))
        if self.encoder_hidden_size is not None:
            check_positive_int("encoder_hidden_size", self.encoder_hidden_size)
        check_positive_int("encoder_num_layers", self.encoder_num_layers)
        check_fraction("encoder_dropout", self.encoder_dropout)


def _peft_config(model: Any, cfg: MethodConfig) -> Any:
    from peft import PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig

    hidden = model.config.hidden_size
    if isinstance(cfg, PrefixConfig):
        return PrefixTuningConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=cfg.num_virtual_tokens,
            prefix_projection=cfg.prefix_projection,
            encoder_hidden_size=cfg.encoder_hidden_size or hidden,
        )
    if isinstance(cfg, PromptConfig):
        return PromptTuningConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=cfg.num_virtual_tokens,
            prompt_tuning_init=cfg.prompt_tuning_init.upper(),
        )
    assert isinstance(cfg, PtuningConfig)
    return PromptEncoderConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=cfg.num_virtual_tokens,
        encoder_reparameterization_type=cfg.encoder_reparameterization_type.upper(),
        encoder_hidden_size=cfg.encoder_hidden_size or hidden,
        encoder_num_layers=cfg.encoder_num_layers,
        encoder_dropout=cfg.encoder_dropout,
    )


def apply(model: Any, cfg: MethodConfig, *, total_steps: int | None = None) -> AppliedMethod:
    from peft import get_peft_model

    peft_config = _peft_config(model, cfg)
    peft_model = get_peft_model(model, peft_config)
    trainable, total = count_parameters(peft_model)
    info = {"num_virtual_tokens": peft_config.num_virtual_tokens, "peft_config": jsonable(peft_config.to_dict())}
    return AppliedMethod(peft_model, trainable, total, mergeable=False, info=info)
