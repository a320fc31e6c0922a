"""Optuna pieces chosen by the sweep config: sampler, pruner, storage, and the search space.

Everything here maps config values to Optuna objects; nothing here knows about training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.config import ParamSpec, StudyConfig
from harness.errors import ConfigError

__all__ = ["SAMPLERS", "PRUNERS", "make_sampler", "make_pruner", "make_storage", "sample_params", "to_override"]

SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "nsga2")
PRUNERS = ("none", "median", "percentile", "hyperband", "successive_halving")


def _options(spec: dict[str, Any], where: str, allowed: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    spec = dict(spec or {})
    name = spec.pop("name", None)
    if name not in allowed:
        raise ConfigError(f"{where}.name", name, f"expected one of {list(allowed)}")
    return name, spec


def _grid_sampler(grid: dict[str, list[Any]], seed: int | None):
    """Optuna's grid over the unconditional categoricals; every other parameter (conditional
    ones, ranges) is drawn by a seeded random sampler instead of being rejected."""
    import optuna

    class ConditionalGridSampler(optuna.samplers.GridSampler):
        def __init__(self) -> None:
            super().__init__(grid, seed=seed)
            self._others = optuna.samplers.RandomSampler(seed=seed)

        def sample_independent(self, study, trial, param_name, param_distribution):
            if param_name in self._search_space:
                return super().sample_independent(study, trial, param_name, param_distribution)
            return self._others.sample_independent(study, trial, param_name, param_distribution)

    return ConditionalGridSampler()


def make_sampler(study: StudyConfig):
    import optuna

    name, opts = _options(study.sampler, "study.sampler", SAMPLERS)
    try:
        if name == "grid":
            grid = {p.key: list(p.choices) for p in study.search_space if p.type == "categorical" and not p.when}
            if not grid:
                raise ConfigError("study.sampler.name", "grid", "needs at least one unconditional categorical parameter")
            unknown = set(opts) - {"seed"}
            if unknown:
                raise TypeError(f"unexpected options {sorted(unknown)}")
            return _grid_sampler(grid, opts.get("seed"))
        cls = {
            "tpe": optuna.samplers.TPESampler,
            "random": optuna.samplers.RandomSampler,
            "cmaes": optuna.samplers.CmaEsSampler,
            "gp": optuna.samplers.GPSampler,
            "nsga2": optuna.samplers.NSGAIISampler,
        }[name]
        return cls(**opts)
    except TypeError as e:
        raise ConfigError("study.sampler", study.sampler, f"bad option for the {name} sampler ({e})") from None


def make_pruner(study: StudyConfig):
    import optuna

    name, opts = _options(study.pruner, "study.pruner", PRUNERS)
    if name != "none" and len(study.objectives) > 1:
        raise ConfigError("study.pruner.name", name, "Optuna cannot prune multi-objective studies; use none")
    cls = {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    }[name]
    try:
        return cls(**opts)
    except TypeError as e:
        raise ConfigError("study.pruner", study.pruner, f"bad option for the {name} pruner ({e})") from None


def storage_url(study: StudyConfig) -> str:
    s = study.storage
    if s.backend == "sqlite":
        return s.url or f"sqlite:///{(study.dir / 'optuna.db').resolve()}"
    if s.backend == "journal":
        return s.url or str((study.dir / "optuna.journal").resolve())
    return s.url or ""


def make_storage(study: StudyConfig):
    """SQLite (one worker), a journal file (several local workers) or PostgreSQL (a cluster).

    RDB storages get a heartbeat, so a worker killed mid-trial has its trial failed (and the
    study goes on) once the grace period passes.
    """
    import optuna

    study.dir.mkdir(parents=True, exist_ok=True)
    url = storage_url(study)
    if study.storage.backend == "journal":
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url))
    if not url:
        raise ConfigError("storage.url", url, "a database URL is required")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat is stable enough for us
        return optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=120)


def to_override(key: str, value: Any, *, group: bool) -> str:
    """A sampled value as a Hydra override string."""
    if group:
        return f"{key}={value}"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif value is None:
        text = "null"
    else:
        text = json.dumps(str(value))
    return f"{key}={text}"


def _condition_holds(when: dict[str, tuple[Any, ...]], chosen: dict[str, Any], base: dict[str, Any]) -> bool:
    for key, allowed in when.items():
        value = chosen[key] if key in chosen else base.get(key)
        if value not in allowed:
            return False
    return True


def sample_params(trial, space: tuple[ParamSpec, ...], *, base: dict[str, Any], groups: set[str]) -> tuple[dict[str, Any], list[str]]:
    """Sample the search space (define-by-run, in order); returns (params, Hydra overrides).

    ``base`` maps keys that ``when`` conditions may name to their values in the base config
    (for a group, the option's ``name``).
    """
    params: dict[str, Any] = {}
    for p in space:
        if p.when and not _condition_holds(p.when, params, base):
            continue
        if p.type == "categorical":
            params[p.key] = trial.suggest_categorical(p.key, list(p.choices))
        elif p.type == "int":
            params[p.key] = trial.suggest_int(p.key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            params[p.key] = trial.suggest_float(p.key, p.low, p.high, step=p.step, log=p.log)
    group_first = sorted(params, key=lambda k: k not in groups)  # choose groups before setting their keys
    return params, [to_override(k, params[k], group=k in groups) for k in group_first]


def config_groups(conf_dir: Path) -> set[str]:
    return {p.name for p in conf_dir.iterdir() if p.is_dir()}
