"""The root config: Hydra composes it, and each config group becomes a typed object at the boundary.

Every group of conf/ has a schema, a frozen dataclass that lives next to the code it configures, and is
registered here in :data:`GROUPS`. :func:`trial_config` and :func:`study_config` turn a fully resolved
root config (plain dict, :func:`compose`) into those objects, or raise :class:`~harness.errors.ConfigError`
naming the full key, the value and what is allowed (the generic :func:`harness.schema.from_dict`).
Nothing below ``main`` sees a DictConfig. Importing this module imports no heavy library.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.config import DataConfig
from harness.errors import ConfigError
from harness.eval_config import EvalConfig, eval_config
from harness.launch._base import LauncherConfig
from harness.methods import MethodConfig, method_config_from_dict
from harness.models.config import ModelConfig
from harness.schema import check_type, from_dict
from harness.study_config import StorageConfig, StudyConfig, search_space
from harness.tracking._base import TrackingConfig
from harness.train_config import TrainConfig

__all__ = [
    "CONF_DIR",
    "GROUPS",
    "Group",
    "TrialConfig",
    "compose",
    "study_config",
    "trial_config",
]


@dataclass(frozen=True)
class TrialConfig:
    """Everything one trial needs, typed: the root keys and one object per config group."""

    seed: int
    runs_dir: Path
    cache_dir: Path
    model: ModelConfig
    method: MethodConfig  # the method's own subclass (harness.methods.METHODS)
    data: DataConfig
    train: TrainConfig
    eval: EvalConfig
    tracking: TrackingConfig

    def __post_init__(self) -> None:
        # Root-level checks: keys are full keys. Knobs of two groups that cannot go together.
        if self.train.gradient_checkpointing and self.method.name == "prefix":
            raise ConfigError("train.gradient_checkpointing", True, "method=prefix cannot recompute its key/value "
                              "prefixes in backward (peft refuses it); turn checkpointing off or use prompt/ptuning")
        if self.eval.generation.seed != self.seed:
            raise ConfigError("eval.generation.seed", self.eval.generation.seed, f"must be the trial's seed ({self.seed})")


@dataclass(frozen=True)
class Group:
    """A config group (``conf/<name>/``): the schema that validates it and, where the composed value is not
    the schema's plain shape, the function that builds it (``build(value, root)``: normalise the value, then
    :func:`harness.schema.from_dict`). Without one, the group is ``from_dict(schema, value, name)``."""

    name: str
    schema: type
    build: Callable[[Any, Mapping[str, Any]], Any] | None = None

    def config(self, root: Mapping[str, Any]) -> Any:
        """This group's typed config, from a fully resolved root config."""
        value = root.get(self.name)
        return self.build(value, root) if self.build else from_dict(self.schema, value, self.name)


# The registry: config group -> its schema. A new group is a conf/<name>/ folder, a schema next to its code
# and one entry here (tests/harness/test_config_contract.py runs every entry).
GROUPS: dict[str, Group] = {
    g.name: g
    for g in (
        Group("model", ModelConfig),
        # `name` picks the method's own subclass; unknown knobs are named with the method's knobs
        Group("method", MethodConfig, build=lambda value, root: method_config_from_dict(value)),
        # a mixture entry or the validation source may be a bare path
        Group("data", DataConfig, build=lambda value, root: DataConfig.from_dict(value)),
        Group("train", TrainConfig),
        # the generation settings take the trial's seed
        Group("eval", EvalConfig, build=lambda value, root: eval_config(value, seed=root.get("seed", 0))),
        Group("tracking", TrackingConfig),
        Group("storage", StorageConfig),
        Group("launcher", LauncherConfig),
    )
}

_TRIAL_GROUPS = ("model", "method", "data", "train", "eval", "tracking")  # the groups of a TrialConfig, in order


def trial_config(raw: dict[str, Any]) -> TrialConfig:
    """Validate one fully resolved trial config (plain dict) into typed objects. Fast: builds no model."""
    seed = check_type("seed", raw.get("seed", 0), int)
    runs_dir = Path(raw.get("runs_dir") or "runs")
    cache_dir = raw.get("cache_dir") or os.environ.get("HARNESS_CACHE_DIR")
    return TrialConfig(
        seed=seed,
        runs_dir=runs_dir,
        cache_dir=Path(cache_dir).expanduser() if cache_dir else runs_dir / ".cache",
        **{name: GROUPS[name].config(raw) for name in _TRIAL_GROUPS},
    )


def study_config(raw: dict[str, Any]) -> StudyConfig:
    """The study part of a fully resolved root config (plain dict): ``study`` with the root keys
    ``search_space``, ``storage``, ``launcher`` and ``runs_dir``."""
    study = from_dict(
        StudyConfig,
        {
            **(raw.get("study") or {}),
            "search_space": search_space(raw.get("search_space")),
            "storage": GROUPS["storage"].config(raw),
            "launcher": GROUPS["launcher"].config(raw),
            "runs_dir": raw.get("runs_dir", "runs"),
        },
        "study",
    )
    # Two groups that cannot go together: a root-level key, so checked here (StudyConfig's keys sit under study.).
    if study.launcher.n_workers > 1 and study.storage.backend == "sqlite":
        raise ConfigError(
            "storage", "sqlite", f"SQLite is not safe for launcher.n_workers={study.launcher.n_workers}; use storage=journal or storage=postgres"
        )
    return study


CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


_COMPOSED: dict[tuple[str, ...], Any] = {}  # the overrides Hydra composed -> that config (unresolved)


def compose(overrides: list[str]) -> dict[str, Any]:
    """The root config with these Hydra overrides, fully resolved, as a plain dict.

    Hydra composes each distinct set of group choices and structural overrides once per process
    (about 50 ms each); a plain value override (``train.learning_rate=3e-4``: an existing key
    that is not a config node) is set on a copy of that composed config, which is what Hydra
    itself does after composing. Trials that differ only in values cost no compose; the result
    equals a full compose (tests/harness/test_config.py).
    """
    from omegaconf import DictConfig, OmegaConf

    structural, values = _split_overrides(overrides)
    cfg = OmegaConf.create(_hydra_compose(tuple(structural)))  # a copy: the cached one stays as composed
    missing = object()
    for key, value in values:
        current = OmegaConf.select(cfg, key, default=missing, throw_on_missing=False)
        if current is missing or isinstance(current, DictConfig):  # Hydra decides what that means
            cfg = OmegaConf.create(_hydra_compose(tuple(overrides)))
            break
        OmegaConf.update(cfg, key, value, merge=False)
    return OmegaConf.to_container(cfg, resolve=True)


def _split_overrides(overrides: list[str]) -> tuple[list[str], list[tuple[str, Any]]]:
    """(overrides Hydra must compose, (key, value) of plain value overrides), order kept."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    structural, values = [], []
    for text, o in zip(overrides, OverridesParser.create().parse_overrides(list(overrides))):
        plain = (o.type == OverrideType.CHANGE and not o.is_sweep_override() and o.package is None
                 and "/" not in o.key_or_group and not o.key_or_group.startswith("hydra"))
        if plain:
            values.append((o.key_or_group, o.value()))
        else:
            structural.append(text)
    return structural, values


def _hydra_compose(overrides: tuple[str, ...]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if overrides not in _COMPOSED:
        if GlobalHydra.instance().is_initialized():  # inside @hydra.main
            _COMPOSED[overrides] = hydra_compose(config_name="config", overrides=list(overrides))
        else:  # called as a library (workers, tests, notebooks)
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
                _COMPOSED[overrides] = hydra_compose(config_name="config", overrides=list(overrides))
    return _COMPOSED[overrides]
