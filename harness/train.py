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

from harness.config import TrainConfig
from harness.errors import ConfigError, TrialFailed

__all__ = ["TrainPlan", "TrainResult", "disable_gradient_checkpointing", "enable_gradient_checkpointing", "plan_steps",
           "resolve_device", "train"]


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
    steps = math.ceil(round(cfg.epochs * per_epoch, 6)) if cfg.epochs is not None else int(cfg.max_steps)
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
    probe: object | None = None  # the kept step's ProbeScore, when the probe ran there
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


def _callbacks(*, record_row, report, total_steps: int, progress: bool, early_stopping=None,
               probe=None, task_eval_steps: int | None = None, report_on: str = "eval_loss", keeper=None):
    from tqdm import tqdm
    from transformers import TrainerCallback

    class Watch(TrainerCallback):
        """History rows, NaN detection, pruning hook, early stopping and one compact progress bar."""

        def __init__(self) -> None:
            self.bar = None
            self.pruned_at: int | None = None
            self.early_stopped_at: int | None = None
            self.last: dict[str, float] = {}
            self.last_eval_step: int | None = None
            self.reported: set[int] = set()
            self.best_eval = math.inf
            self.evals_without_gain = 0
            self.next_probe = task_eval_steps or 0
            self.probed: dict[int, object] = {}

        def on_train_begin(self, args, state, control, **kw):
            self.bar = tqdm(total=total_steps, desc="training", unit="step", disable=not progress, leave=False)

        def on_step_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kw):
            logs = dict(logs or {})
            loss = logs.get("loss", logs.get("eval_loss"))
            row = {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
            if "loss" in row:
                row["train_loss"] = row.pop("loss")
            if "train_runtime" in row and "train_loss" in row:  # the Trainer's closing summary: a mean, not a point
                row["train_loss_mean"] = row.pop("train_loss")
            record_row(row)  # a non-finite loss too: the diagnosis reads it from the history
            if loss is not None and not math.isfinite(loss):
                raise TrialFailed(f"loss is {loss} at step {state.global_step} (diverged; try a lower learning rate)")
            self.last.update({k: row[k] for k in ("train_loss", "eval_loss") if k in row})
            if self.bar is not None:
                self.bar.set_postfix({k: f"{v:.3f}" for k, v in self.last.items()})

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            eval_loss = (metrics or {}).get("eval_loss")
            if eval_loss is None or state.global_step in self.reported:
                return  # the final evaluate() repeats the last scheduled step
            step = state.global_step
            self.reported.add(step)
            self.last_eval_step = step
            stopping = self._early_stop(float(eval_loss))
            # the probe: at the first evaluation from each multiple of task_eval_steps, and at the end
            scored = None
            if probe is not None and step > 0 and (step >= self.next_probe or step >= total_steps or stopping):
                scored = probe(step)
                self.probed[step] = scored
                self.next_probe = (step // task_eval_steps + 1) * task_eval_steps
                record_row(scored.row())
            value = float(eval_loss) if report_on == "eval_loss" else (scored.pass_at_1 if scored is not None else None)
            # at the last step training is over: a prune would discard the finished run, so it is not heeded
            if value is not None and report(step, value) and step < total_steps:
                self.pruned_at = step
                control.should_training_stop = True
                return
            if keeper is not None:
                keeper.observe(step, eval_loss=float(eval_loss), probe=scored)
            if stopping:
                self.early_stopped_at = step
                control.should_training_stop = True

        def _early_stop(self, eval_loss: float) -> bool:
            if early_stopping is None:
                return False
            if eval_loss < self.best_eval - early_stopping.min_delta:
                self.best_eval, self.evals_without_gain = eval_loss, 0
                return False
            self.evals_without_gain += 1
            return self.evals_without_gain >= early_stopping.patience

        def on_train_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.close()

    return Watch()


def train(
    *,
    model,
    tokenizer,
    train_data: list[dict],
    validation_data: list[dict],
    collator: Callable,
    cfg: TrainConfig,
    learning_rate: float,
    seed: int,
    work_dir: Path,
    device: str,
    optim: str = "adamw_torch",
    optimizer=None,
    extra_callbacks: list | None = None,
    record_row: Callable[[dict], None] = lambda row: None,
    report: Callable[[int, float], bool] = lambda step, value: False,
    report_on: str = "eval_loss",
    probe: Callable[[int], object] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` in place. Raises TrialFailed on NaN loss; returns early when ``report`` says stop.

    ``probe(step) -> ProbeScore`` (harness.probe) runs every ``cfg.task_eval_steps`` and at the end,
    with the KV cache on and the RNG state saved and restored around it, so training goes exactly
    as it would without it; ``report_on="probe"`` reports its pass@1 instead of the eval loss.
    ``optim`` names the optimizer the Trainer builds (ignored when ``optimizer`` is given: a method's own, such
    as LoRA+'s parameter groups, already of that kind)."""
    from harness.keep import Keeper

    from transformers import Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    precision = cfg.precision if cfg.precision != "auto" else ("bf16" if device == "cuda" else "fp32")
    plan = plan_steps(cfg, n_examples=len(train_data))
    args = TrainingArguments(
        output_dir=str(work_dir),
        max_steps=plan.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=max(cfg.batch_size, 32),
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=learning_rate,
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
        optim=optim,
        neftune_noise_alpha=cfg.neftune_alpha,  # the Trainer hooks the input embeddings while train() runs
        disable_tqdm=True,
    )
    if report_on == "probe" and (probe is None or not cfg.task_eval_steps):
        raise TrialFailed("pruning on the probe needs train.task_eval_steps (the probe) to be set")
    probe_seconds = 0.0

    def timed_probe(step: int):
        import torch

        nonlocal probe_seconds
        started = time.perf_counter()
        rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        if config is not None:
            config.use_cache = use_cache  # generation wants its KV cache; training does not
        try:
            return probe(step)
        finally:
            if config is not None:
                config.use_cache = False
            torch.set_rng_state(rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)
            probe_seconds += time.perf_counter() - started

    config = getattr(model, "config", None)
    use_cache = getattr(config, "use_cache", None)  # read before the Trainer, which sets it to args.use_cache (False)
    keeper = Keeper(cfg.keep, model, work_dir=work_dir)
    watch = _callbacks(record_row=record_row, report=report, total_steps=plan.max_steps, progress=progress,
                       early_stopping=cfg.early_stopping, probe=timed_probe if probe is not None and cfg.task_eval_steps else None,
                       task_eval_steps=cfg.task_eval_steps, report_on=report_on, keeper=keeper)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_data,
        eval_dataset=validation_data,
        data_collator=collator,
        callbacks=[watch, *(extra_callbacks or [])],
        optimizers=(optimizer, None),
    )
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    # No KV cache while training: it is useless there, and with packing it would make
    # transformers skip the packed-sequence mask (examples would attend to each other).
    if config is not None:
        config.use_cache = False
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    started = time.perf_counter()
    try:
        with _PeakMemory(device) as mem:
            out = trainer.train()
        seconds = time.perf_counter() - started - probe_seconds  # training time: the probes are timed apart
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
    train_tokens = _train_tokens(train_data, cfg, out.global_step)
    return TrainResult(
        steps=out.global_step,
        train_loss=float(out.training_loss) if out.training_loss is not None else None,
        eval_loss=float(final_eval) if final_eval is not None else None,
        tokens=train_tokens,
        train_seconds=seconds,
        tokens_per_s=train_tokens / seconds if seconds > 0 else 0.0,
        peak_memory_mb=round(mem.peak, 1),
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

