"""Optuna pieces chosen by the sweep config: sampler, pruner, storage, and the search space.

Everything here maps config values to Optuna objects; nothing here knows about training.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.study_config import ParamSpec, StudyConfig

__all__ = [
    "SAMPLERS", "PRUNERS", "make_sampler", "make_pruner", "make_storage", "sample_params", "to_override",
    "redact_url", "storage_url", "params_key", "open_study", "storage_call", "STOP_ATTR",
]

STOP_ATTR = "harness:stop"  # set by a worker that saw a failure every trial would share
_TRANSIENT_PATIENCE_S = 300
LAST_OUTAGE_END = 0.0  # when this process last got the storage back after losing it

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


def make_sampler(study: StudyConfig, *, per_trial_seed: bool = False):
    """The configured sampler. With ``per_trial_seed`` a fresh sampler is built for every trial,
    seeded from (study.sampler.seed, trial number): concurrent workers and resumed runs then
    draw different configurations, and trial N's draw depends only on the seed, N and the
    trials finished before it (docs/cluster.md, "Reproducibility")."""
    if per_trial_seed:
        return _PerTrialSeed(study)
    return _make_sampler(study, None)


def _trial_seed(seed: int | None, number: int) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{seed}:{number}".encode()).digest()[:4], "little")


def _PerTrialSeed(study: StudyConfig):
    import optuna

    class PerTrialSeedSampler(optuna.samplers.BaseSampler):
        """Delegates to a sampler built for each trial with a seed derived from its number."""

        def __init__(self) -> None:
            self._base_seed = (study.sampler or {}).get("seed")
            self._inner = _make_sampler(study, None)

        def before_trial(self, s, trial) -> None:
            self._inner = _make_sampler(study, _trial_seed(self._base_seed, trial.number))
            self._inner.before_trial(s, trial)

        def infer_relative_search_space(self, s, trial):
            return self._inner.infer_relative_search_space(s, trial)

        def sample_relative(self, s, trial, search_space):
            return self._inner.sample_relative(s, trial, search_space)

        def sample_independent(self, s, trial, param_name, param_distribution):
            return self._inner.sample_independent(s, trial, param_name, param_distribution)

        def after_trial(self, s, trial, state, values) -> None:
            self._inner.after_trial(s, trial, state, values)

        def reseed_rng(self) -> None:
            self._inner.reseed_rng()

    return PerTrialSeedSampler()


def _make_sampler(study: StudyConfig, seed: int | None):
    import optuna

    name, opts = _options(study.sampler, "study.sampler", SAMPLERS)
    if seed is not None:
        opts["seed"] = seed
    try:
        if name == "grid":
            grid = {p.key: list(p.choices or ()) for p in study.search_space if p.type == "categorical" and not p.when}
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
    """The storage URL, credentials included: for connecting only, never for a record (see redact_url)."""
    s = study.storage
    if s.backend == "sqlite":
        return s.url or f"sqlite:///{(study.dir / 'optuna.db').resolve()}"
    if s.backend == "journal":
        return s.url or str((study.dir / "optuna.journal").resolve())
    url = s.url or ""
    if url.startswith(("postgresql://", "postgres://")):  # SQLAlchemy's bare scheme means psycopg2; we ship psycopg 3
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def redact_url(url: str | None) -> str | None:
    """``scheme://user:secret@host/db`` -> ``scheme://user:***@host/db`` (and any ``password=`` query value)."""
    import re

    if not url:
        return url
    url = re.sub(r"^([a-zA-Z0-9+.-]+://[^:/@]*):[^@]*@", r"\1:***@", url)
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", url)


# Connections per worker: the main loop's session, the heartbeat thread's, one spare.
_ENGINE_KWARGS = {"pool_pre_ping": True, "pool_recycle": 1800, "pool_size": 1, "max_overflow": 2, "pool_timeout": 60}


def make_storage(study: StudyConfig, *, on_stale=None):
    """SQLite (one worker), a journal file (several local workers) or PostgreSQL (a cluster).

    RDB storages get Optuna's heartbeat (``study.heartbeat_s``, ``study.grace_s``): a trial
    whose worker stopped beating is failed by whichever live worker looks first, and
    ``on_stale(study, frozen_trial)`` runs there once. The journal storage has no heartbeat
    in Optuna; ``harness.liveness`` keeps a lease for it instead.
    """
    import warnings

    import optuna

    study.dir.mkdir(parents=True, exist_ok=True)
    url = storage_url(study)
    if study.storage.backend == "journal":
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url))
    if not url:
        raise ConfigError("storage.url", url, "a database URL is required (for postgres: set HARNESS_POSTGRES_URL)")
    kwargs = {} if url.startswith("sqlite") else {"engine_kwargs": dict(_ENGINE_KWARGS)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat is stable enough for us
        try:
            return optuna.storages.RDBStorage(
                url, heartbeat_interval=study.heartbeat_s, grace_period=study.grace_s,
                heartbeat_stale_trial_callback=on_stale, **kwargs,
            )
        except ImportError as e:
            raise ConfigError("storage.url", redact_url(url), f"no database driver for this URL ({e.__cause__ or e})") from None


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
            params[p.key] = trial.suggest_categorical(p.key, list(p.choices or ()))
            continue
        assert p.low is not None and p.high is not None  # ParamSpec: a number range has both
        if p.type == "int":
            params[p.key] = trial.suggest_int(p.key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            params[p.key] = trial.suggest_float(p.key, p.low, p.high, step=p.step, log=p.log)
    group_first = sorted(params, key=lambda k: k not in groups)  # choose groups before setting their keys
    return params, [to_override(k, params[k], group=k in groups) for k in group_first]


def params_key(params: dict[str, Any]) -> str:
    """A configuration's identity within a study: its sampled parameters, canonically."""
    import hashlib

    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_groups(conf_dir: Path) -> set[str]:
    return {p.name for p in conf_dir.iterdir() if p.is_dir()}


# -- storage access that survives a database restart ------------------------------------------


def _transient(e: BaseException | None) -> bool:
    """A lost connection (server restarting, network blip), here or under Optuna's wrapping."""
    try:
        import sqlalchemy.exc as sa
    except ImportError:  # pragma: no cover - optuna depends on it
        return isinstance(e, OSError)
    seen = 0
    while e is not None and seen < 5:  # optuna re-raises as StorageInternalError from the SQLAlchemy error
        if isinstance(e, (sa.OperationalError, sa.InterfaceError)):
            return True
        if isinstance(e, sa.DBAPIError) and getattr(e, "connection_invalidated", False):
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def storage_call(fn: Callable[..., Any], *args: Any, what: str, patience: float = _TRANSIENT_PATIENCE_S, **kwargs: Any) -> Any:
    """Call ``fn``, retrying with backoff while the storage is unreachable (up to ``patience`` s)."""
    global LAST_OUTAGE_END
    deadline, delay, told = time.time() + patience, 0.5, False
    while True:
        try:
            value = fn(*args, **kwargs)
            if told:
                LAST_OUTAGE_END = time.time()
            return value
        except Exception as e:  # noqa: BLE001 - only transient storage errors are retried
            if not _transient(e) or time.time() > deadline:
                raise
            if not told:
                first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
                print(f"storage unreachable during {what} ({first}); retrying for up to {patience:.0f} s", file=sys.stderr, flush=True)
                told = True
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def open_study(cfg: StudyConfig, *, per_trial_seed: bool = True):
    """(optuna study, reaper) on the configured storage; the study is created when missing."""
    import optuna

    from harness.liveness import Reaper

    reaper = Reaper(cfg, None)
    storage = make_storage(cfg, on_stale=reaper.on_stale)
    study = storage_call(
        optuna.create_study,
        storage=storage, sampler=make_sampler(cfg, per_trial_seed=per_trial_seed), pruner=make_pruner(cfg),
        study_name=cfg.name, directions=[o.direction for o in cfg.objectives], load_if_exists=True,
        what="opening the study",
    )
    reaper.study = study
    return study, reaper
