"""Training guards that need no model: NaN loss fails the trial, pruning stops it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.errors import TrialFailed
from harness.train import _callbacks


def _watch(report=lambda step, loss: False):
    rows = []
    return _callbacks(record_row=rows.append, report=report, total_steps=10, progress=False), rows


def test_nan_loss_fails_the_trial_with_the_step():
    watch, _ = _watch()
    with pytest.raises(TrialFailed, match="loss is nan at step 7"):
        watch.on_log(None, SimpleNamespace(global_step=7), None, logs={"loss": float("nan")})


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
