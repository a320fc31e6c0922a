"""Training stage: the HF Trainer over the prepared data, with history, pruning and NaN checks.

Takes plain typed inputs (TrainConfig, the model the method prepared, tokenized data) and
returns a :class:`TrainResult`. It knows nothing of Optuna: the trial passes ``report``,
a function called with (step, value) that answers whether to stop (pruning); the value is the
eval loss, or the probe's pass@1 with ``report_on="probe"``. Early stopping on eval loss
(``train.early_stopping``) is a normal end of training, not a pruning: the result says which of
the two stopped it (``stop_reason``). With a ``probe`` (harness.probe) it is called every
``train.task_eval_steps`` and at the end, and ``train.keep`` chooses the weights that are left
in the model (harness.keep): the result says which step and why.

The run's length is fixed before it starts (:func:`plan_steps`): ``train.max_steps``, or
``train.epochs`` converted to optimizer steps exactly as the Trainer counts them, so warm-up,
pruning, AdaLoRA's schedule and the record all see one number. Gradient checkpointing, the
optimizer (``optim``, resolved by harness.optimizers) and NEFTune apply to every method alike.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.errors import ConfigError, TrialFailed
from harness.train_config import TrainConfig
from harness.watch import watch_training

if TYPE_CHECKING:
    from harness.probe import ProbeScore

__all__ = ["Optimization", "TrainData", "TrainHooks", "TrainPlan", "TrainResult", "disable_gradient_checkpointing",
           "enable_gradient_checkpointing", "plan_steps", "never_stop", "resolve_device", "train"]


@dataclass(frozen=True)
class TrainPlan:
    max_steps: int  # optimizer steps this run takes (unless pruned or stopped early)
    steps_per_epoch: int  # optimizer steps in one pass over the training split
    epochs: float  # passes over the training split that max_steps makes

    def as_record(self) -> dict:
        return {"max_steps": self.max_steps, "steps_per_epoch": self.steps_per_epoch, "epochs": round(self.epochs, 4)}


def plan_steps(cfg: TrainConfig, *, n_examples: int) -> TrainPlan:
    """The run's optimizer steps. An epoch is ceil(ceil(N / batch_size) / gradient_accumulation_steps) steps (at
    least 1), the HF Trainer's own count (Trainer.set_initial_training_values, one process); train.epochs E
    makes ceil(E x that) steps, so a fractional epoch ends at the first step past it. (The product is rounded to
    6 decimals first: 0.1 x 30 is 3.0000000000000004 in floating point, and that is 3 steps, not 4.)"""
    batches = math.ceil(n_examples / cfg.batch_size)
    per_epoch = max(1, math.ceil(batches / cfg.gradient_accumulation_steps))
    if cfg.epochs is not None:
        steps = math.ceil(round(cfg.epochs * per_epoch, 6))
    else:
        assert cfg.max_steps is not None  # TrainConfig: exactly one of the two is set
        steps = cfg.max_steps
    return TrainPlan(max_steps=steps, steps_per_epoch=per_epoch, epochs=steps / per_epoch)


def _transformers_model(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model  # under a peft wrapper


def enable_gradient_checkpointing(model) -> None:
    """Keep only each decoder layer's input in forward and recompute the layer in backward (train.gradient_checkpointing).

    Non-reentrant checkpointing (``use_reentrant=False``): gradients reach the trainable parameters inside a layer
    even when nothing entering it requires grad, which is the case with PEFT adapters on a frozen base. transformers
    also hooks the input embeddings to require grad (``enable_input_require_grads``), which the reentrant variant
    would need. Enabled here, not through TrainingArguments, so tests and perf/bench_grad_checkpointing.py
    measure the very call trials make. Random ops (dropout) replay their RNG state in the recomputation.
    """
    base = _transformers_model(model)
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise ConfigError("train.gradient_checkpointing", True, f"{type(base).__name__} does not support it")
    base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})


def disable_gradient_checkpointing(model) -> None:
    base = _transformers_model(model)
    base.activation_checkpointing_disable()
    base.disable_input_require_grads()


@dataclass
class TrainResult:
    steps: int
    train_loss: float | None
    eval_loss: float | None
    tokens: int
    train_seconds: float
    tokens_per_s: float
    peak_memory_mb: float
    stop_reason: str  # "max_steps" | "early_stopping" | "pruned"
    kept_step: int | None = None  # the step whose weights the model holds now (train.keep)
    keep_reason: str | None = None
    probe: ProbeScore | None = None  # the kept step's score, when the probe ran there
    probe_seconds: float = 0.0  # time in the probe (not in train_seconds)


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise TrialFailed("train.device=cuda but no CUDA device is visible")
    return requested


class _PeakMemory:
    """Peak resident memory (CPU) or peak allocated CUDA memory while training runs."""

    def __init__(self, device: str):
        self.device, self.peak, self._stop = device, 0.0, threading.Event()

    def __enter__(self):
        if self.device == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
        else:
            import psutil

            proc = psutil.Process()

            def sample() -> None:
                while not self._stop.wait(0.05):
                    self.peak = max(self.peak, proc.memory_info().rss / 2**20)

            self.peak = proc.memory_info().rss / 2**20
            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device == "cuda":
            import torch

            self.peak = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            self._thread.join()


def _ignore_row(row: dict) -> None:
    pass


def never_stop(step: int, value: float) -> bool:
    """A pruner hook that never stops a run (no study: harness.evaluate, tests)."""
    return False


@dataclass(frozen=True)
class TrainData:
    """The tokenized splits and how to batch them (harness.data.prepare_data, make_collator)."""

    train: list[dict]
    validation: list[dict]
    collator: Callable


@dataclass(frozen=True)
class Optimization:
    """How the weights move. ``optim`` names the optimizer the Trainer builds (harness.optimizers);
    ``optimizer`` is a method's own, already of that kind (LoRA+'s parameter groups), or None;
    ``callbacks`` are the method's Trainer callbacks (AdaLoRA's rank allocation)."""

    learning_rate: float
    optim: str = "adamw_torch"
    optimizer: Any = None
    callbacks: tuple[Any, ...] = ()


@dataclass(frozen=True)
class TrainHooks:
    """What training tells the trial, and what the trial tells training.

    ``record_row(row)`` gets every history row; ``report(step, value) -> stop?`` is the pruner's hook,
    given the eval loss or, with ``report_on="probe"``, the probe's pass@1; ``probe(step) -> ProbeScore``
    (harness.probe) runs every ``train.task_eval_steps`` and at the end."""

    record_row: Callable[[dict], None] = _ignore_row
    report: Callable[[int, float], bool] = never_stop
    report_on: Literal["eval_loss", "probe"] = "eval_loss"
    probe: Callable[[int], Any] | None = None
    progress: bool = True


def _training_arguments(cfg: TrainConfig, *, plan: TrainPlan, optimization: Optimization, seed: int, work_dir: Path,
                        device: str):
    from transformers import TrainingArguments

    precision = cfg.precision if cfg.precision != "auto" else ("bf16" if device == "cuda" else "fp32")
    return TrainingArguments(
        output_dir=str(work_dir),
        max_steps=plan.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=max(cfg.batch_size, 32),
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=optimization.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=int(cfg.warmup_ratio * plan.max_steps),
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        eval_on_start=True,  # the untrained model's eval loss: the reference the curve diagnosis compares with
        logging_steps=cfg.logging_steps,
        save_strategy="no",
        report_to="none",
        seed=seed,
        data_seed=seed,
        use_cpu=device == "cpu",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        optim=optimization.optim,
        neftune_noise_alpha=cfg.neftune_alpha,  # the Trainer hooks the input embeddings while train() runs
        disable_tqdm=True,
    )


class _ProbeRunner:
    """Calls the probe with the KV cache on and the RNG state saved and restored around it, so training
    goes exactly as it would without it; its time is counted apart from training's."""

    def __init__(self, probe: Callable[[int], Any], *, config: Any, use_cache: bool | None) -> None:
        self.probe, self.config, self.use_cache, self.seconds = probe, config, use_cache, 0.0

    def __call__(self, step: int) -> Any:
        import torch

        started = time.perf_counter()
        rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        if self.config is not None:
            self.config.use_cache = self.use_cache  # generation wants its KV cache; training does not
        try:
            return self.probe(step)
        finally:
            if self.config is not None:
                self.config.use_cache = False
            torch.set_rng_state(rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)
            self.seconds += time.perf_counter() - started


def train(
    *,
    model: Any,
    data: TrainData,
    cfg: TrainConfig,
    optimization: Optimization,
    seed: int,
    work_dir: Path,
    device: str,
    hooks: TrainHooks = TrainHooks(),
) -> TrainResult:
    """Train ``model`` in place. Raises TrialFailed on NaN loss; returns early when ``hooks.report`` says stop.

    With ``hooks.probe`` the probe runs every ``cfg.task_eval_steps`` and at the end (:class:`_ProbeRunner`);
    ``cfg.keep`` then chooses the weights left in the model (harness.keep)."""
    from harness.keep import Keeper

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    plan = plan_steps(cfg, n_examples=len(data.train))
    args = _training_arguments(cfg, plan=plan, optimization=optimization, seed=seed, work_dir=work_dir, device=device)
    if hooks.report_on == "probe" and (hooks.probe is None or not cfg.task_eval_steps):
        raise TrialFailed("pruning on the probe needs train.task_eval_steps (the probe) to be set")
    config = getattr(model, "config", None)
    use_cache = getattr(config, "use_cache", None)  # read before the Trainer, which sets it to args.use_cache (False)
    probe = _ProbeRunner(hooks.probe, config=config, use_cache=use_cache) if hooks.probe is not None and cfg.task_eval_steps else None
    keeper = Keeper(cfg.keep, model, work_dir=work_dir)
    watch = watch_training(record_row=hooks.record_row, report=hooks.report, total_steps=plan.max_steps, progress=hooks.progress,
                       early_stopping=cfg.early_stopping, probe=probe, task_eval_steps=cfg.task_eval_steps,
                       report_on=hooks.report_on, keeper=keeper)
    trainer = _trainer(model, args=args, data=data, optimization=optimization, watch=watch)
    # No KV cache while training: it is useless there, and with packing it would make
    # transformers skip the packed-sequence mask (examples would attend to each other).
    if config is not None:
        config.use_cache = False
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    probe_seconds = (lambda: probe.seconds) if probe is not None else (lambda: 0.0)
    started = time.perf_counter()
    try:
        with _PeakMemory(device) as mem:
            out = trainer.train()
        seconds = time.perf_counter() - started - probe_seconds()  # training time: the probes are timed apart
        # Eval loss of the final weights: the last scheduled evaluation when it ran on them (always
        # so for a pruned or early-stopped trial), else one more evaluation (and the final probe).
        if watch.last_eval_step == out.global_step:
            final_eval = watch.last.get("eval_loss")
        else:
            final_eval = trainer.evaluate()["eval_loss"]
        # the weights the final evaluation scores (train.keep): the last, or an earlier kept step's
        kept = keeper.finish(out.global_step) if watch.pruned_at is None else None
        if kept is not None and kept.restored:
            final_eval = kept.eval_loss
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
        if config is not None:
            config.use_cache = use_cache
        if cfg.gradient_checkpointing:  # generation and saving see the model as it was
            disable_gradient_checkpointing(model)
    return _result(out, watch=watch, kept=kept, final_eval=final_eval, seconds=seconds, peak_mb=mem.peak,
                   tokens=_train_tokens(data.train, cfg, out.global_step), probe_seconds=probe_seconds())


def _trainer(model: Any, *, args: Any, data: TrainData, optimization: Optimization, watch: Any) -> Any:
    """The HF Trainer over the prepared data, with our watcher and the method's callbacks (no printing ones)."""
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.validation,
        data_collator=data.collator,
        callbacks=[watch, *optimization.callbacks],
        optimizers=(optimization.optimizer, None),
    )
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    return trainer


def _result(out: Any, *, watch: Any, kept: Any, final_eval: float | None, seconds: float, peak_mb: float, tokens: int,
            probe_seconds: float) -> TrainResult:
    """What the run did: ``out`` is the Trainer's TrainOutput; ``kept`` the keeper's choice (None when pruned)."""
    return TrainResult(
        steps=out.global_step,
        train_loss=float(out.training_loss) if out.training_loss is not None else None,
        eval_loss=float(final_eval) if final_eval is not None else None,
        tokens=tokens,
        train_seconds=seconds,
        tokens_per_s=tokens / seconds if seconds > 0 else 0.0,
        peak_memory_mb=round(peak_mb, 1),
        stop_reason="pruned" if watch.pruned_at is not None else "early_stopping" if watch.early_stopped_at is not None else "max_steps",
        kept_step=kept.step if kept is not None else None,
        keep_reason=kept.reason if kept is not None else None,
        probe=(kept.probe or watch.probed.get(kept.step)) if kept is not None else None,
        probe_seconds=round(probe_seconds, 3),
    )


def _train_tokens(train_data: list[dict], cfg: TrainConfig, steps: int) -> int:
    """Non-padding tokens seen by the optimizer: mean example length x examples consumed."""
    if not train_data:
        return 0
    mean_len = sum(len(x["input_ids"]) for x in train_data) / len(train_data)
    return int(mean_len * cfg.batch_size * cfg.gradient_accumulation_steps * steps)

