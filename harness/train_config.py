"""The ``train`` group's schemas: the optimisation knobs (harness.train), early stopping and the
probe scored during training (harness.probe). Imports nothing heavy; keys in the checks are
relative to each schema (harness.schema adds ``train.`` / ``train.probe.``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from harness.errors import ConfigError
from harness.schema import check_one_of, check_positive

__all__ = ["EarlyStoppingConfig", "ProbeConfig", "TrainConfig"]


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """``train.early_stopping``: stop when eval loss has not improved by more than ``min_delta``
    for ``patience`` evaluations in a row. The trial is complete and evaluated (not pruned)."""

    patience: int
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        check_positive("patience", self.patience)
        check_positive("min_delta", self.min_delta, allow_zero=True)


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
        from evaluators.benchmarks import BENCHMARKS

        check_one_of("benchmark", self.benchmark, sorted(BENCHMARKS))
        splits = BENCHMARKS[self.benchmark].splits  # () for a benchmark with no splits (humaneval)
        if not splits:
            raise ConfigError("benchmark", self.benchmark,
                              "a benchmark with a validation split (toy, or mbpp: validation ids 511-600)")
        if self.split == "test" or self.split not in splits:
            raise ConfigError("split", self.split,
                              f"one of {[s for s in splits if s != 'test']} (never test: it gives the final score)")
        check_positive("size", self.size)
        check_positive("samples", self.samples, allow_zero=True)


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
            raise ConfigError("epochs", self.epochs, f"set exactly one of train.max_steps and train.epochs, and "
                              f"train.max_steps={self.max_steps} is set too; to train by epochs add train.max_steps=null")
        if self.max_steps is None and self.epochs is None:
            raise ConfigError("max_steps", None, "set exactly one of train.max_steps (optimizer steps) and "
                              "train.epochs (passes over the training split); neither is set")
        if self.task_eval_steps is not None:
            check_positive("task_eval_steps", self.task_eval_steps)
        if self.keep == "best_probe" and self.task_eval_steps is None:
            raise ConfigError("keep", self.keep, "needs train.task_eval_steps (the probe) to be set")
        for key in ("max_steps", "epochs", "learning_rate", "num_threads", "neftune_alpha"):
            if getattr(self, key) is not None:
                check_positive(key, getattr(self, key))
        for key in ("batch_size", "gradient_accumulation_steps", "eval_steps", "logging_steps"):
            check_positive(key, getattr(self, key))
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError("warmup_ratio", self.warmup_ratio, "must be in [0, 1)")
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive("max_grad_norm", self.max_grad_norm, allow_zero=True)
        if self.optim is not None:
            from harness.optimizers import check_name

            check_name("optim", self.optim)
