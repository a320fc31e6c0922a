"""Training guards that need no model: NaN loss fails the trial, pruning stops it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.errors import TrialFailed
from harness.watch import watch_training


def _watch(report=lambda step, loss: False, early_stopping=None, total_steps=100):
    rows = []
    return watch_training(record_row=rows.append, report=report, total_steps=total_steps, progress=False,
                      early_stopping=early_stopping), rows


def test_nan_loss_fails_the_trial_with_the_step():
    watch, rows = _watch()
    with pytest.raises(TrialFailed, match="loss is nan at step 7"):
        watch.on_log(None, SimpleNamespace(global_step=7), None, logs={"loss": float("nan")})
    assert rows and rows[-1]["step"] == 7  # the row is in the history, for the diagnosis


def test_history_rows_rename_loss():
    watch, rows = _watch()
    watch.on_log(None, SimpleNamespace(global_step=3), None, logs={"loss": 1.5, "grad_norm": 0.3, "learning_rate": 1e-3})
    assert rows == [{"step": 3, "train_loss": 1.5, "grad_norm": 0.3, "learning_rate": 1e-3}]


def test_pruner_answer_stops_training_and_each_step_is_reported_once():
    calls = []
    watch, _ = _watch(report=lambda step, loss: calls.append((step, loss)) or step >= 20)
    control = SimpleNamespace(should_training_stop=False)
    watch.on_evaluate(None, SimpleNamespace(global_step=10), control, metrics={"eval_loss": 0.9})
    assert not control.should_training_stop
    watch.on_evaluate(None, SimpleNamespace(global_step=10), control, metrics={"eval_loss": 0.9})
    watch.on_evaluate(None, SimpleNamespace(global_step=20), control, metrics={"eval_loss": 0.8})
    assert control.should_training_stop and watch.pruned_at == 20
    assert calls == [(10, 0.9), (20, 0.8)]


def test_early_stopping_waits_patience_evaluations_without_a_gain_larger_than_min_delta():
    from harness.train_config import EarlyStoppingConfig

    watch, _ = _watch(early_stopping=EarlyStoppingConfig(patience=2, min_delta=0.01))
    control = SimpleNamespace(should_training_stop=False)
    for step, loss in [(10, 1.0), (20, 0.9), (30, 0.895), (40, 0.95)]:
        assert not control.should_training_stop, f"stopped before step {step}"
        watch.on_evaluate(None, SimpleNamespace(global_step=step), control, metrics={"eval_loss": loss})
    # 0.895 is not a gain larger than 0.01 over 0.9, nor is 0.95: two evaluations without one
    assert control.should_training_stop and watch.early_stopped_at == 40 and watch.pruned_at is None


def test_no_early_stopping_unless_configured():
    watch, _ = _watch()
    control = SimpleNamespace(should_training_stop=False)
    for step, loss in [(10, 1.0), (20, 2.0), (30, 3.0), (40, 4.0)]:
        watch.on_evaluate(None, SimpleNamespace(global_step=step), control, metrics={"eval_loss": loss})
    assert not control.should_training_stop and watch.early_stopped_at is None


def test_a_prune_at_the_last_step_is_not_heeded():
    watch, _ = _watch(report=lambda step, loss: True, total_steps=10)
    control = SimpleNamespace(should_training_stop=False)
    watch.on_evaluate(None, SimpleNamespace(global_step=10), control, metrics={"eval_loss": 0.9})
    assert not control.should_training_stop and watch.pruned_at is None
