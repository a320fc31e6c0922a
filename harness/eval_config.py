"""The ``eval`` group's schemas: which benchmarks and suites score a model, in which sandbox,
with which generation settings (evaluators' own :class:`GenerationSettings`). Imports nothing heavy;
keys in the checks are relative to each schema (harness.schema adds ``eval.``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evaluators.engines import GenerationSettings
from harness.errors import ConfigError
from harness.schema import check_one_of, check_positive, check_type, from_dict

__all__ = ["BenchmarkSpec", "EvalConfig", "SuiteSpec", "eval_config"]


@dataclass(frozen=True)
class BenchmarkSpec:
    """One ``eval.benchmarks`` entry: a benchmark of ``evaluators.benchmarks.BENCHMARKS`` and which part of it."""

    name: str
    split: str = "test"
    limit: int | None = None
    prompt_format: str | None = None

    def __post_init__(self) -> None:
        from evaluators.benchmarks import BENCHMARKS

        check_one_of("name", self.name, sorted(BENCHMARKS))
        # a benchmark that declares no splits is one fixed set of problems (HumanEval): its only split is "test"
        check_one_of("split", self.split, list(BENCHMARKS[self.name].splits or ("test",)))
        if self.limit is not None:
            check_positive("limit", self.limit)


@dataclass(frozen=True)
class SuiteSpec:
    """One ``eval.suites`` entry: a local suite (``stdlib``, ``toy_base``) or an lm-eval task name (needs the hub)."""

    name: str
    limit: int | None = None  # first N documents
    metric: str | None = None  # hub tasks: the headline metric (default: acc_norm, else acc, ...)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("name", self.name, "a suite or lm-eval task name")
        if self.limit is not None:
            check_positive("limit", self.limit)


@dataclass(frozen=True)
class EvalConfig:
    """``eval`` group: benchmarks scored by pass@k in the sandbox, lm-eval suites for forgetting, and
    how completions are generated. Build it with :func:`eval_config` (the generation settings take
    the trial's seed and ``eval.engine``)."""

    benchmarks: tuple[BenchmarkSpec, ...]
    generation: GenerationSettings  # eval.generation; its seed and engine are the trial's seed and eval.engine
    ks: tuple[int, ...] = (1,)
    sandbox: str = "auto"  # a backend of evaluators.sandbox.BACKENDS, or auto (docker when a daemon answers, else process)
    timeout_s: float = 3.0
    workers: int = 2
    suites: tuple[SuiteSpec, ...] = ()  # lm-eval suites scored on the trained model and the base (docs/suites.md)
    engine: str = "hf"  # the generation engine (evaluators.engines, docs/generation.md)

    def __post_init__(self) -> None:
        from evaluators.engines import ENGINES
        from evaluators.sandbox import BACKENDS

        check_one_of("sandbox", self.sandbox, ["auto", *sorted(BACKENDS)])
        check_one_of("engine", self.engine, sorted(ENGINES))
        if self.generation.engine != self.engine:
            raise ConfigError("generation.engine", self.generation.engine, f"must be eval.engine ({self.engine})")
        names = [s.name for s in self.suites]
        if len(set(names)) != len(names):
            raise ConfigError("suites", names, "each suite once")
        if not self.benchmarks:
            raise ConfigError("benchmarks", [], "at least one benchmark is required")
        for k in self.ks:
            if k < 1 or k > self.generation.n_samples:
                raise ConfigError(
                    "ks", list(self.ks), f"every k must be in [1, eval.generation.n_samples={self.generation.n_samples}]"
                )
        check_positive("timeout_s", self.timeout_s)
        check_positive("workers", self.workers)


# Fields of GenerationSettings that are not keys of eval.generation, and the key that sets each.
_SET_ELSEWHERE = {"seed": "the trial's seed (the root key seed)", "engine": "eval.engine"}


def eval_config(value: Any, *, seed: int) -> EvalConfig:
    """The ``eval`` group (plain dict) -> EvalConfig, the generation settings completed with the
    trial's ``seed`` and ``eval.engine``."""
    data = dict(value) if isinstance(value, Mapping) else ({} if value is None else value)
    generation = data.get("generation") if isinstance(data, dict) else None
    if isinstance(generation, Mapping):
        for key, owner in _SET_ELSEWHERE.items():
            if key in generation:
                raise ConfigError(f"eval.generation.{key}", generation[key], f"not a key of eval.generation: it is {owner}")
        engine = check_type("eval.engine", data.get("engine", EvalConfig.engine), str)  # the field's default
        data["generation"] = {**generation, "seed": seed, "engine": engine}
    return from_dict(EvalConfig, data, "eval")
