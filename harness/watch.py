"""The training stage's watcher: one Trainer callback for history rows, NaN detection, the pruning
hook, early stopping on eval loss, the probe's schedule, ``train.keep``'s observations and one compact
progress bar. harness.train builds it; it knows nothing of Optuna (``report`` answers whether to stop).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.errors import TrialFailed

if TYPE_CHECKING:
    from harness.train_config import EarlyStoppingConfig

__all__ = ["watch_training"]


def watch_training(*, record_row: Callable[[dict], None], report: Callable[[int, float], bool], total_steps: int,
                   progress: bool, early_stopping: EarlyStoppingConfig | None = None, probe: Callable[[int], Any] | None = None,
                   task_eval_steps: int | None = None, report_on: str = "eval_loss", keeper: Any = None) -> Any:
    """The Trainer callback that watches a run (see ``Watch``); ``probe`` is already wrapped by the training stage."""
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
