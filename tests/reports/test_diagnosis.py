"""The training-curve diagnosis, one rule at a time, on synthetic histories."""

from __future__ import annotations

import math

import pytest

from reports.diagnosis import VERDICTS, diagnose, read_history


def history(train: list[float], evals: list[float] | None = None, *, every: int = 5, eval_every: int = 10,
            grads: list[float] | None = None, eval_on_start: bool = True) -> list[dict]:
    """Rows as the Trainer logs them: train rows every ``every`` steps, eval rows every ``eval_every``
    (the first at step 0 when ``eval_on_start``), and the Trainer's closing summary."""
    rows = []
    for i, loss in enumerate(train):
        row = {"step": every * (i + 1), "train_loss": loss, "learning_rate": 1e-3}
        if grads:
            row["grad_norm"] = grads[i]
        rows.append(row)
    for i, loss in enumerate(evals or []):
        rows.append({"step": eval_every * (i if eval_on_start else i + 1), "eval_loss": loss})
    rows.sort(key=lambda r: r["step"])
    rows.append({"step": every * len(train), "train_runtime": 10.0, "train_loss_mean": sum(train) / max(1, len(train))})
    return rows


def falling(n: int, start: float = 2.0, end: float = 0.6, noise: float = 0.0) -> list[float]:
    return [end + (start - end) * math.exp(-4 * i / n) + (noise if i % 2 else -noise) for i in range(n)]


def test_a_steadily_falling_loss_is_healthy():
    d = diagnose(history(falling(30, noise=0.05), falling(15, start=2.0, end=0.75)))
    assert d.verdict == "healthy", d
    assert d.findings == ()


def test_too_few_points_is_insufficient_data():
    d = diagnose(history([2.0, 1.5, 1.2], [2.0, 1.6]))
    assert d.verdict == "insufficient_data"
    assert "3 train-loss and 2 eval-loss points" in d.evidence


def test_nan_loss_is_diverged_whatever_the_number_of_points():
    d = diagnose(history([2.0, float("nan")]))
    assert d.verdict == "diverged" and "nan at step 10" in d.evidence


def test_a_loss_that_ends_far_above_its_start_is_diverged():
    # eval loss starts at 1.9 (step 0), jumps to 4.4 and settles at 3.8: the model was damaged
    d = diagnose(history([3.8, 4.9, 4.5, 4.3, 4.1, 4.0, 3.9, 3.8], [1.9, 4.4, 4.1, 3.9, 3.8]))
    assert d.verdict == "diverged", d
    assert "2.0x where it started" in d.evidence


def test_a_loss_that_rises_well_above_its_start_then_recovers_is_oscillating():
    # the learning rate is too high: eval loss 1.86 -> 2.87 -> ... -> 1.17
    evals = [1.86, 2.87, 2.9, 2.57, 2.25, 1.93, 1.70, 1.60, 1.50, 1.39, 1.30, 1.17]
    d = diagnose(history(falling(30, start=2.6, end=1.1), evals))
    assert d.verdict == "oscillating", d
    assert "56% above its start" in d.evidence


def test_an_eval_loss_that_keeps_changing_direction_is_oscillating():
    d = diagnose(history(falling(30), [2.0, 1.5, 1.8, 1.3, 1.6, 1.2, 1.5, 1.1]))
    assert d.verdict == "oscillating" and "changed direction" in d.evidence


def test_a_zigzagging_train_loss_without_eval_is_oscillating():
    train = [2.0, 1.2, 1.9, 1.1, 1.8, 1.0, 1.7, 1.0, 1.6, 1.0]
    d = diagnose(history(train, []))
    assert d.verdict == "oscillating" and "zigzags" in d.evidence


def test_noise_on_a_flat_loss_is_underfitting_not_oscillation():
    # learning rate far too low: the eval loss does not move, the train loss is batch noise
    train = [1.9, 1.83, 2.02, 2.12, 2.03, 1.98, 1.82, 1.57, 1.72, 1.86, 2.22, 1.56, 2.47, 2.16, 1.72]
    d = diagnose(history(train, [2.097] * 8))
    assert d.verdict == "underfitting", d
    assert "barely falls" in d.evidence


def test_a_loss_that_plateaus_high_is_underfitting():
    train = falling(30, start=2.0, end=1.7)
    evals = [2.0, 1.8, 1.72, 1.7, 1.7, 1.7, 1.7, 1.7]  # falls 15%, then nothing over the second half
    d = diagnose(history(train, evals))
    assert d.verdict == "underfitting", d
    assert "plateaus" in d.evidence


def test_eval_loss_turning_up_beyond_its_minimum_is_overfitting():
    evals = [2.0, 1.4, 1.1, 0.95, 0.92, 0.96, 1.02, 1.08]
    d = diagnose(history(falling(40, end=0.2), evals))
    assert d.verdict == "overfitting", d
    assert "17% above its minimum 0.92 at step 40" in d.evidence
    assert "train loss kept falling" in d.evidence


def test_one_late_uptick_within_noise_is_not_overfitting():
    evals = [2.0, 1.4, 1.1, 0.95, 0.92, 0.93]  # 1% above its minimum, one point after it
    assert diagnose(history(falling(30), evals)).verdict == "healthy"


def test_a_gradient_norm_spike_is_reported():
    grads = [1.0] * 30
    grads[17] = 25.0
    d = diagnose(history(falling(30), falling(8, end=0.8), grads=grads))
    assert d.verdict == "grad_spikes", d
    assert "25 at step 90" in d.evidence


def test_every_rule_that_fires_is_kept_most_serious_first():
    grads = [1.0] * 10
    grads[5] = 50.0
    d = diagnose(history([2.0, 1.8, 1.9, 2.0, 2.1, 2.3, 2.8, 3.5, 4.0, 4.5], [2.0, 2.2, 2.9, 3.8, 4.6], grads=grads))
    rules = [f["rule"] for f in d.findings]
    assert d.verdict == "diverged" and rules[0] == "diverged" and "grad_spikes" in rules
    assert d.as_record()["diagnosis_findings"][0]["rule"] == "diverged"
    assert set(rules) <= set(VERDICTS)


def test_the_trainers_closing_mean_is_not_a_point_of_the_curve():
    # a closing train_loss (the mean over training) at the last step would look like a jump up
    rows = history(falling(30, noise=0.02), falling(15, start=2.0, end=0.75))
    rows[-1] = {"step": 150, "train_runtime": 10.0, "train_loss": 1.5}
    assert diagnose(rows).verdict == "healthy"


def test_read_history_skips_torn_and_malformed_lines(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"step": 5, "train_loss": 1.0}\n[1, 2]\n{"step": "x"}\nnot json\n{"step": 10, "train_lo')
    assert read_history(path) == [{"step": 5, "train_loss": 1.0}]
    assert read_history(tmp_path / "missing.jsonl") == []


@pytest.mark.parametrize("rows", [[], [{"step": 1}], [{"step": 1, "train_loss": "high"}]])
def test_degenerate_histories_do_not_raise(rows):
    assert diagnose(rows).verdict == "insufficient_data"
