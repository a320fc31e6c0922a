"""The study's schemas: the study itself (``study`` in conf/config.yaml and the sweep files), its
objectives and search space, and the ``storage`` group. harness.study turns them into Optuna objects.
Imports nothing heavy; keys in the checks are relative to each schema (harness.schema adds the prefix)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.errors import ConfigError
from harness.launch._base import LauncherConfig
from harness.schema import check_positive, from_dict

__all__ = ["ObjectiveSpec", "ParamSpec", "StorageConfig", "StudyConfig", "search_space"]


@dataclass(frozen=True)
class StorageConfig:
    """``storage`` group: where the Optuna study lives (docs/cluster.md). The URL of a server comes
    from the environment, never from a config file."""

    backend: Literal["sqlite", "journal", "postgres"] = "sqlite"
    url: str | None = None


@dataclass(frozen=True)
class ObjectiveSpec:
    """One ``study.objectives`` entry: a metric of the trial record and its direction."""

    metric: str  # e.g. "toy/pass@1", "eval_loss"
    direction: Literal["maximize", "minimize"] = "maximize"


@dataclass(frozen=True)
class ParamSpec:
    """One search-space entry. ``key`` is a Hydra override key; a bare config-group name picks a group option."""

    key: str
    type: Literal["categorical", "int", "float"]
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type == "categorical":
            if not self.choices:
                raise ConfigError("choices", self.choices, "a non-empty list is required for a categorical")
        else:
            if self.low is None or self.high is None:
                raise ConfigError("", {"low": self.low, "high": self.high}, f"{self.type} needs low and high")
            if self.low > self.high:
                raise ConfigError("low", self.low, f"must be <= high ({self.high})")
            if self.log and self.low <= 0:
                raise ConfigError("low", self.low, "must be > 0 for a log-scale parameter")


@dataclass(frozen=True)
class StudyConfig:
    """The study part of a root config: ``study.*`` plus the root keys ``search_space``, ``storage``,
    ``launcher`` and ``runs_dir`` (built by harness.config.study_config)."""

    name: str
    n_trials: int
    objectives: tuple[ObjectiveSpec, ...]
    sampler: dict[str, Any]
    pruner: dict[str, Any]
    search_space: tuple[ParamSpec, ...]
    storage: StorageConfig
    launcher: LauncherConfig
    runs_dir: Path
    max_failures: int | None = None  # stop a run after this many failed trials (None = n_trials)
    max_trials: int | None = None  # stop a run after this many trials of any state (None = 3 x n_trials)
    max_retries: int = 2  # a trial lost with its worker (kill, preemption, node loss) is re-run this often
    heartbeat_s: int = 30  # workers beat this often while a trial runs ...
    grace_s: int = 120  # ... and a trial with no beat for this long is failed as lost
    allow_changed: bool = False  # continue a study whose definition changed (recorded in the study)
    prune_on: Literal["eval_loss", "probe"] = "eval_loss"  # what the pruner watches (docs/probe.md)
    objective_split: Literal["test", "validation"] = "test"  # validation: pass@k objectives are the probe's final score

    def __post_init__(self) -> None:
        check_positive("n_trials", self.n_trials)
        check_positive("max_retries", self.max_retries, allow_zero=True)
        check_positive("heartbeat_s", self.heartbeat_s)
        if self.grace_s < 2 * self.heartbeat_s:
            raise ConfigError("grace_s", self.grace_s, f"must be at least 2 x study.heartbeat_s ({2 * self.heartbeat_s})")
        if not self.objectives:
            raise ConfigError("objectives", [], "at least one objective is required")
        if not self.name or "/" in self.name:
            raise ConfigError("name", self.name, "a non-empty name without '/'")

    @property
    def dir(self) -> Path:
        return self.runs_dir / self.name

    @property
    def selection_objectives(self) -> tuple[ObjectiveSpec, ...]:
        """The values told to Optuna. With ``objective_split=validation`` a pass@k objective is the
        validation probe's final ``probe/pass@1`` (same direction); the test split is scored for the
        record only, so the chosen trial's test pass@k is not inflated by the selection."""
        if self.objective_split == "test":
            return self.objectives
        return tuple(ObjectiveSpec("probe/pass@1", o.direction) if "/pass@" in o.metric else o for o in self.objectives)


def search_space(space: Mapping[str, Any] | None) -> tuple[ParamSpec, ...]:
    """The root ``search_space`` mapping (override key -> spec) -> its entries. A ``when`` value may be
    a single value or a list; it becomes a tuple."""
    out = []
    for key, spec in (space or {}).items():
        if not isinstance(spec, Mapping):
            raise ConfigError(f"search_space.{key}", spec, "expected a mapping with type and choices or low/high")
        spec = dict(spec)
        when = spec.pop("when", None) or {}
        if not isinstance(when, Mapping):
            raise ConfigError(f"search_space.{key}.when", when, "expected a mapping {key: [values]}")
        when = {k: tuple(v) if isinstance(v, (list, tuple)) else (v,) for k, v in when.items()}
        out.append(from_dict(ParamSpec, {"key": key, **spec, "when": when}, f"search_space.{key}"))
    return tuple(out)
