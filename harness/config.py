"""Typed schemas for every config group, validated at the boundary.

Hydra composes a DictConfig; :func:`trial_config` turns it into frozen dataclasses (or
raises :class:`~harness.errors.ConfigError` naming the key, the value and what is allowed).
Nothing below ``main`` sees a DictConfig. The ``method`` and ``data`` groups are validated
by their own packages (``harness.methods``, ``harness.data``), which own their schemas.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.errors import ConfigError

__all__ = [
    "CONF_DIR",
    "BenchmarkSpec",
    "EarlyStoppingConfig",
    "EvalConfig",
    "GenerationConfig",
    "LauncherConfig",
    "ModelConfig",
    "ObjectiveSpec",
    "ParamSpec",
    "ProbeConfig",
    "StorageConfig",
    "StudyConfig",
    "SuiteSpec",
    "TrackingConfig",
    "TrainConfig",
    "TrialConfig",
    "compose",
    "from_dict",
    "study_config",
    "trial_config",
]


def _positive(key: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(key, value, "must be >= 0" if allow_zero else "must be > 0")


@dataclass(frozen=True)
class ModelConfig:
    name: str
    path: str  # hub id, local directory, or builtin:<name>
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = False
    builtin: dict[str, Any] | None = None  # recipe of a locally built model (builtin: paths only)
    # None: transformers' choice (sdpa where the model supports it). flash_attention_2 needs CUDA and the
    # flash-attn package, checked when the model is loaded (harness.models.check_attention).
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = None

    def __post_init__(self) -> None:
        if self.path.startswith("builtin:") and not self.builtin:
            raise ConfigError("model.builtin", self.builtin, f"a recipe is required for {self.path}")
        if self.attn_implementation == "flash_attention_2" and self.dtype == "float32":
            raise ConfigError("model.attn_implementation", self.attn_implementation,
                              "FlashAttention-2 runs in float16 or bfloat16 only, and model.dtype=float32; use sdpa or set model.dtype")


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """``train.early_stopping``: stop when eval loss has not improved by more than ``min_delta``
    for ``patience`` evaluations in a row. The trial is complete and evaluated (not pruned)."""

    patience: int
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        _positive("train.early_stopping.patience", self.patience)
        _positive("train.early_stopping.min_delta", self.min_delta, allow_zero=True)


@dataclass(frozen=True)
class ProbeConfig:
    """``train.probe``: the fixed, seeded set of validation tasks generated for and scored every
    ``train.task_eval_steps`` (docs/probe.md). Never a test split: choosing checkpoints, pruning or
    selecting trials on test problems would inflate the reported pass@k."""

    benchmark: str = "toy"
    split: str = "validation"
    size: int = 24  # tasks, drawn once with ``seed`` from the split (the same for every trial)
    seed: int = 0
    samples: int = 3  # sample generations recorded per evaluation (prompt, completion, verdict)

    def __post_init__(self) -> None:
        import importlib

        from evaluators.benchmarks import BENCHMARKS

        if self.benchmark not in BENCHMARKS:
            raise ConfigError("train.probe.benchmark", self.benchmark, f"expected one of {sorted(BENCHMARKS)}")
        splits = getattr(importlib.import_module(BENCHMARKS[self.benchmark]), "SPLITS", None)
        if not splits:
            raise ConfigError("train.probe.benchmark", self.benchmark,
                              "a benchmark with a validation split (toy, or mbpp: validation ids 511-600)")
        if self.split == "test" or self.split not in splits:
            raise ConfigError("train.probe.split", self.split,
                              f"one of {[s for s in splits if s != 'test']} (never test: it gives the final score)")
        _positive("train.probe.size", self.size)
        _positive("train.probe.samples", self.samples, allow_zero=True)


@dataclass(frozen=True)
class TrainConfig:
    """``train`` group. Exactly one of ``max_steps`` (optimizer steps) and ``epochs`` (passes over the training
    split, converted to steps once the data is prepared: harness.train.plan_steps). docs/training.md has every knob."""

    batch_size: int
    max_steps: int | None = None
    epochs: float | None = None
    learning_rate: float | None = None  # None = the method's default_learning_rate
    gradient_accumulation_steps: int = 1
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    eval_steps: int = 50
    logging_steps: int = 10
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    num_threads: int | None = None
    early_stopping: EarlyStoppingConfig | None = None
    optim: str | None = None  # a transformers optimizer name; None = the method's default_optim (else adamw_torch)
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% more compute
    neftune_alpha: float | None = None  # NEFTune noise on the input embeddings while training; None = off
    task_eval_steps: int | None = None  # the probe every N steps (at the first eval-loss evaluation from there) and at the end; None: off
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    keep: Literal["last", "best_probe", "best_eval_loss"] = "last"  # which weights the final evaluation scores

    def __post_init__(self) -> None:
        if self.max_steps is not None and self.epochs is not None:
            raise ConfigError("train.epochs", self.epochs, f"set exactly one of train.max_steps and train.epochs, and "
                              f"train.max_steps={self.max_steps} is set too; to train by epochs add train.max_steps=null")
        if self.max_steps is None and self.epochs is None:
            raise ConfigError("train.max_steps", None, "set exactly one of train.max_steps (optimizer steps) and "
                              "train.epochs (passes over the training split); neither is set")
        if self.task_eval_steps is not None:
            _positive("train.task_eval_steps", self.task_eval_steps)
        if self.keep == "best_probe" and self.task_eval_steps is None:
            raise ConfigError("train.keep", self.keep, "needs train.task_eval_steps (the probe) to be set")
        for key in ("max_steps", "epochs", "learning_rate", "num_threads", "neftune_alpha"):
            if getattr(self, key) is not None:
                _positive(f"train.{key}", getattr(self, key))
        for key in ("batch_size", "gradient_accumulation_steps", "eval_steps", "logging_steps"):
            _positive(f"train.{key}", getattr(self, key))
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError("train.warmup_ratio", self.warmup_ratio, "must be in [0, 1)")
        _positive("train.weight_decay", self.weight_decay, allow_zero=True)
        _positive("train.max_grad_norm", self.max_grad_norm, allow_zero=True)
        if self.optim is not None:
            from harness.optimizers import check_name

            check_name("train.optim", self.optim)


@dataclass(frozen=True)
class GenerationConfig:
    n_samples: int = 1
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 128
    batch_size: int = 16

    def __post_init__(self) -> None:
        for key in ("n_samples", "max_new_tokens", "batch_size"):
            _positive(f"eval.generation.{key}", getattr(self, key))
        _positive("eval.generation.temperature", self.temperature, allow_zero=True)
        if not 0 < self.top_p <= 1:
            raise ConfigError("eval.generation.top_p", self.top_p, "must be in (0, 1]")
        if self.temperature == 0 and self.n_samples > 1:
            raise ConfigError(
                "eval.generation.n_samples", self.n_samples, "greedy decoding (temperature 0) gives 1 distinct sample; set n_samples=1 or temperature > 0"
            )


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    split: str = "test"
    limit: int | None = None
    prompt_format: str | None = None

    def __post_init__(self) -> None:
        from evaluators.benchmarks import BENCHMARKS

        if self.name not in BENCHMARKS:
            raise ConfigError("eval.benchmarks[].name", self.name, f"expected one of {sorted(BENCHMARKS)}")
        if self.limit is not None:
            _positive(f"eval.benchmarks[{self.name}].limit", self.limit)


@dataclass(frozen=True)
class SuiteSpec:
    """One ``eval.suites`` entry: a local suite (``stdlib``, ``toy_base``) or an lm-eval task name (needs the hub)."""

    name: str
    limit: int | None = None  # first N documents
    metric: str | None = None  # hub tasks: the headline metric (default: acc_norm, else acc, ...)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("eval.suites[].name", self.name, "a suite or lm-eval task name")
        if self.limit is not None:
            _positive(f"eval.suites.{self.name}.limit", self.limit)


@dataclass(frozen=True)
class EvalConfig:
    benchmarks: tuple[BenchmarkSpec, ...]
    generation: GenerationConfig
    ks: tuple[int, ...] = (1,)
    sandbox: Literal["auto", "docker", "process"] = "auto"
    timeout_s: float = 3.0
    workers: int = 2
    suites: tuple[SuiteSpec, ...] = ()  # lm-eval suites scored on the trained model and the base (docs/suites.md)
    engine: str = "hf"  # the generation engine (evaluators.engines, docs/generation.md)

    def __post_init__(self) -> None:
        from evaluators.engines import ENGINES

        if self.engine not in ENGINES:
            raise ConfigError("eval.engine", self.engine, f"expected one of {sorted(ENGINES)}")
        names = [s.name for s in self.suites]
        if len(set(names)) != len(names):
            raise ConfigError("eval.suites", names, "each suite once")
        if not self.benchmarks:
            raise ConfigError("eval.benchmarks", [], "at least one benchmark is required")
        for k in self.ks:
            if k < 1 or k > self.generation.n_samples:
                raise ConfigError(
                    "eval.ks", list(self.ks), f"every k must be in [1, eval.generation.n_samples={self.generation.n_samples}]"
                )
        _positive("eval.timeout_s", self.timeout_s)
        _positive("eval.workers", self.workers)


@dataclass(frozen=True)
class TrackingConfig:
    """``tracking`` group. ``backend`` names an entry of ``harness.tracking.TRACKERS``;
    ``mode: disabled`` turns any backend off. ``offline``/``online``, ``project``, ``entity`` and
    ``upload_adapter`` are W&B's (docs/tracking.md)."""

    backend: str = "wandb"
    mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "harness"
    entity: str | None = None
    # False: the trial's adapter artifact is a reference to the local folder (checksums only);
    # True: its files are uploaded (on `wandb sync` when offline).
    upload_adapter: bool = False

    def __post_init__(self) -> None:
        from harness.tracking import TRACKERS  # the registry is the list of names (imports no tracking library)

        if self.backend not in TRACKERS:
            raise ConfigError("tracking.backend", self.backend, f"expected one of {sorted(TRACKERS)}")


@dataclass(frozen=True)
class StorageConfig:
    backend: Literal["sqlite", "journal", "postgres"] = "sqlite"
    url: str | None = None


@dataclass(frozen=True)
class LauncherConfig:
    """``launcher`` group: who runs the workers (``harness.launch``). The SLURM keys are read by
    ``launcher=slurm`` only; each maps to one sbatch option (docs/cluster.md)."""

    backend: Literal["local", "slurm"] = "local"
    n_workers: int = 1
    wait: bool = True  # false: submit and exit; rerun the command (or harness.status) to follow
    partition: str | None = None
    time_min: int = 60  # per worker (array task)
    mem_gb: float | None = None
    cpus_per_task: int = 1
    gpus_per_task: int = 0
    max_parallel: int | None = None  # array tasks running at once (None: all)
    sbatch: dict[str, Any] = field(default_factory=dict)  # extra sbatch options, e.g. {account: abc, qos: high}
    setup: tuple[str, ...] = ()  # shell lines run before each worker (module load, source venv)

    def __post_init__(self) -> None:
        _positive("launcher.n_workers", self.n_workers)
        _positive("launcher.time_min", self.time_min)
        _positive("launcher.cpus_per_task", self.cpus_per_task)
        _positive("launcher.gpus_per_task", self.gpus_per_task, allow_zero=True)


@dataclass(frozen=True)
class ObjectiveSpec:
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
        where = f"search_space.{self.key}"
        if self.type == "categorical":
            if not self.choices:
                raise ConfigError(f"{where}.choices", self.choices, "a non-empty list is required for a categorical")
        else:
            if self.low is None or self.high is None:
                raise ConfigError(where, {"low": self.low, "high": self.high}, f"{self.type} needs low and high")
            if self.low > self.high:
                raise ConfigError(f"{where}.low", self.low, f"must be <= high ({self.high})")
            if self.log and self.low <= 0:
                raise ConfigError(f"{where}.low", self.low, "must be > 0 for a log-scale parameter")


@dataclass(frozen=True)
class StudyConfig:
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
        _positive("study.n_trials", self.n_trials)
        _positive("study.max_retries", self.max_retries, allow_zero=True)
        _positive("study.heartbeat_s", self.heartbeat_s)
        if self.grace_s < 2 * self.heartbeat_s:
            raise ConfigError("study.grace_s", self.grace_s, f"must be at least 2 x study.heartbeat_s ({2 * self.heartbeat_s})")
        if not self.objectives:
            raise ConfigError("study.objectives", [], "at least one objective is required")
        if not self.name or "/" in self.name:
            raise ConfigError("study.name", self.name, "a non-empty name without '/'")
        if self.launcher.n_workers > 1 and self.storage.backend == "sqlite":
            raise ConfigError(
                "storage", "sqlite", f"SQLite is not safe for launcher.n_workers={self.launcher.n_workers}; use storage=journal or storage=postgres"
            )

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


@dataclass(frozen=True)
class TrialConfig:
    seed: int
    runs_dir: Path
    cache_dir: Path
    model: ModelConfig
    method: Any  # the method's own frozen dataclass (harness.methods)
    data: Any  # harness.data.DataConfig
    train: TrainConfig
    eval: EvalConfig
    tracking: TrackingConfig

    def __post_init__(self) -> None:
        # Knobs of two groups that cannot go together.
        if self.train.gradient_checkpointing and self.method.name == "prefix":
            raise ConfigError("train.gradient_checkpointing", True, "method=prefix cannot recompute its key/value "
                              "prefixes in backward (peft refuses it); turn checkpointing off or use prompt/ptuning")


# ---------------------------------------------------------------------------------------------
# Generic dict -> dataclass with key/type checks.


def _check_type(key: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(key, value, arg)
            except ConfigError as e:
                errors.append(e.expected)
        raise ConfigError(key, value, " or ".join(errors))
    if origin is Literal:
        if value not in args:
            raise ConfigError(key, value, f"expected one of {list(args)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, value, "expected a list")
        inner = args[0] if args else Any
        return tuple(_check_type(f"{key}[{i}]", v, inner) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, value, "expected a mapping")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else from_dict(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, value, "expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, value, "expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, value, "expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, value, "expected a string")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(key, value, "expected a path")
        return Path(value)
    return value


def from_dict(cls: type, data: Any, prefix: str) -> Any:
    """Build dataclass ``cls`` from a plain mapping, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(prefix, data, f"expected a mapping of {cls.__name__} fields")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}", data[unknown[0]], f"unknown key; allowed keys: {sorted(names)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}"
        if f.name in data:
            kwargs[f.name] = _check_type(key, data[f.name], hints[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(key, None, "this key is required")
    return cls(**kwargs)


def _params(space: dict[str, Any]) -> tuple[ParamSpec, ...]:
    out = []
    for key, spec in (space or {}).items():
        if not isinstance(spec, dict):
            raise ConfigError(f"search_space.{key}", spec, "expected a mapping with type and choices or low/high")
        spec = dict(spec)
        when = spec.pop("when", {}) or {}
        if not isinstance(when, dict):
            raise ConfigError(f"search_space.{key}.when", when, "expected a mapping {key: [values]}")
        param = from_dict(ParamSpec, {"key": key, **spec}, f"search_space.{key}")
        when = {k: tuple(v) if isinstance(v, (list, tuple)) else (v,) for k, v in when.items()}
        out.append(dataclasses.replace(param, when=when))
    return tuple(out)


def study_config(raw: dict[str, Any]) -> StudyConfig:
    """The study part of a fully resolved root config (plain dict)."""
    study = dict(raw.get("study") or {})
    return from_dict(
        StudyConfig,
        {
            **study,
            "search_space": _params(raw.get("search_space") or {}),
            "storage": from_dict(StorageConfig, raw.get("storage"), "storage"),
            "launcher": from_dict(LauncherConfig, raw.get("launcher"), "launcher"),
            "runs_dir": raw.get("runs_dir", "runs"),
        },
        "study",
    )


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


def trial_config(raw: dict[str, Any]) -> TrialConfig:
    """Validate one fully resolved trial config (plain dict) into typed objects. Fast: builds no model."""
    from harness.data import DataConfig
    from harness.methods import method_config_from_dict

    runs_dir = Path(raw.get("runs_dir") or "runs")
    cache_dir = raw.get("cache_dir") or os.environ.get("HARNESS_CACHE_DIR")
    evald = dict(raw.get("eval") or {})
    return TrialConfig(
        seed=_check_type("seed", raw.get("seed", 0), int),
        runs_dir=runs_dir,
        cache_dir=Path(cache_dir).expanduser() if cache_dir else runs_dir / ".cache",
        model=from_dict(ModelConfig, raw.get("model"), "model"),
        method=method_config_from_dict(dict(raw.get("method") or {})),
        data=DataConfig.from_dict(dict(raw.get("data") or {})),
        train=from_dict(TrainConfig, raw.get("train"), "train"),
        eval=from_dict(EvalConfig, evald, "eval"),
        tracking=from_dict(TrackingConfig, raw.get("tracking"), "tracking"),
    )
