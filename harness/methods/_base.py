"""What every fine-tuning method shares: the config base, value checks, the applied result, the registry entry.

Nothing here imports torch, peft or transformers: `method_config_from_dict` must stay fast and light.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError

__all__ = [
    "AppliedMethod",
    "Method",
    "MethodConfig",
    "MethodUnavailable",
    "check_bool",
    "check_choice",
    "check_fraction",
    "check_positive_float",
    "check_positive_int",
    "count_parameters",
    "jsonable",
]


class MethodUnavailable(RuntimeError):
    """The method cannot run on this machine (missing CUDA or library). The message is written for a user."""


@dataclass(frozen=True)
class MethodConfig:
    """Fields every `method` group has. Subclasses add their knobs and check them in `__post_init__`.

    `default_learning_rate` is the learning rate this method trains well with on the embedded default; the trainer
    uses it when `train.learning_rate` is not set (full fine-tuning wants a far smaller rate than prompt tuning).
    `default_optim` likewise stands in for an unset `train.optim` (qlora: paged_adamw_8bit; None: adamw_torch).
    """

    name: str = ""
    default_learning_rate: float | None = None
    default_optim: str | None = None

    def __post_init__(self) -> None:
        if self.default_learning_rate is not None:
            check_positive_float("default_learning_rate", self.default_learning_rate)
        if self.default_optim is not None:
            from harness.optimizers import check_name

            check_name("default_optim", self.default_optim)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass
class AppliedMethod:
    """A model with a method applied, ready to train.

    `mergeable`: after training, `prepare_for_generation` returns a plain transformers model (adapter merged, or
    no adapter at all), so generation runs at base-model speed.
    `on_optimizer_step`: when set, call it with the global step after every `optimizer.step()` and before
    `zero_grad()` (AdaLoRA's rank allocation needs the gradients); `trainer_callbacks` wraps it for HF Trainer.
    """

    model: Any
    trainable_params: int
    total_params: int
    mergeable: bool
    info: dict[str, Any] = field(default_factory=dict)
    on_optimizer_step: Callable[[int], None] | None = None

    @property
    def trainable_percent(self) -> float:
        return 100.0 * self.trainable_params / max(self.total_params, 1)


@dataclass(frozen=True)
class Method:
    """A registry entry: one method name, its config class and the functions that implement it.

    `apply(model, cfg, *, total_steps)` returns an AppliedMethod. `load_kwargs(cfg, device)` returns extra
    `from_pretrained` kwargs (or raises MethodUnavailable). `optimizer(model, cfg, *, learning_rate,
    weight_decay, optim, device)` returns a torch optimizer of the `optim` kind (its own parameter groups), or
    None for the one the trainer builds from `train.optim`.
    `saves_adapter`: save_pretrained writes a peft adapter (else full model weights). `load(base_model, path)`
    replaces the default loading of a saved result when the method must prepare the base first.
    """

    name: str
    config_cls: type[MethodConfig]
    apply: Callable[..., AppliedMethod]
    mergeable: bool
    saves_adapter: bool
    summary: str
    load_kwargs: Callable[..., dict[str, Any]] | None = None
    optimizer: Callable[..., Any] | None = None
    load: Callable[..., Any] | None = None


# ---------------------------------------------------------------------------------------------- value checks
# Each raises ConfigError(key, value, expected) with the key relative to the method's config, as every value
# check in a schema's __post_init__ does; harness.schema.from_dict reports it as method.<key>.


def check_positive_int(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(key, value, "must be a positive integer")


def check_positive_float(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(key, value, "must be a positive number")


def check_fraction(key: str, value: object) -> None:
    """A probability such as dropout: 0 <= value < 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(key, value, "must be a number in [0, 1)")


def check_bool(key: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(key, value, "must be true or false")


def check_choice(key: str, value: object, choices: tuple[object, ...]) -> None:
    if not any(type(value) is type(c) and value == c for c in choices):  # type check: True must not match 1
        shown = ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in choices)
        raise ConfigError(key, value, f"must be one of: {shown}")


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts. peft models count 4-bit packed weights at their real size."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable), int(total)
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def jsonable(value: Any) -> Any:
    """A peft config dict made safe for JSON/YAML records (sets -> sorted lists, enums -> values)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, (str, int, float, bool)):
        return value.value
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
