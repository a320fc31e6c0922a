"""Training-curve diagnosis: a pure function over a trial's ``history.jsonl``.

    diagnose(rows) -> Diagnosis(verdict, evidence, findings)

Verdicts, most serious first (the first rule that fires names the trial; every rule that
fires is kept in ``findings``):

    diverged           a loss is NaN/inf, or ends DIVERGE_END x above where it started, or blows
                       up to DIVERGE_PEAK x its start on the way (the model was damaged)
    oscillating        the learning rate is too high: the loss rises OSCILLATION_RISE above its
                       start before it falls, the eval loss changes direction OSCILLATION_TURNS
                       times by more than OSCILLATION_STEP each, or the train loss's total
                       variation is OSCILLATION_RATIO times its net fall (when it fell at
                       least UNDERFIT_DROP: below that the ratio measures batch noise)
    overfitting        the eval loss ends OVERFIT_RISE above its minimum, with at least
                       OVERFIT_AFTER evaluations after the minimum
    underfitting       the loss falls by less than UNDERFIT_DROP from its first value, or it
                       plateaus (less than PLATEAU_GAIN over the second half) while it has
                       fallen by less than PLATEAU_DROP in all
    grad_spikes        a gradient norm above SPIKE_FACTOR x the median gradient norm
    healthy            none of the above
    insufficient_data  fewer than MIN_TRAIN_POINTS train-loss points and MIN_EVAL_POINTS eval-loss
                       points: nothing can be said

"Start" is the eval loss before the first step (the Trainer evaluates on start) where the
history has it, else the first train-loss point. The thresholds are documented (and calibrated on real runs) in docs/report.md. This module
reads plain rows only; it never imports training code.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["VERDICTS", "Diagnosis", "diagnose", "read_history"]

VERDICTS = ("diverged", "oscillating", "overfitting", "underfitting", "grad_spikes", "healthy", "insufficient_data")

MIN_TRAIN_POINTS = 5
MIN_EVAL_POINTS = 4
DIVERGE_END = 1.25
DIVERGE_PEAK = 3.0
OSCILLATION_RISE = 0.20
OSCILLATION_RATIO = 6.0
OSCILLATION_TURNS = 3
OSCILLATION_STEP = 0.05
OVERFIT_RISE = 0.03
OVERFIT_AFTER = 2
UNDERFIT_DROP = 0.15
PLATEAU_GAIN = 0.02
PLATEAU_DROP = 0.30
SPIKE_FACTOR = 10.0


@dataclass(frozen=True)
class Diagnosis:
    verdict: str
    evidence: str
    findings: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def as_record(self) -> dict[str, Any]:
        """The keys a trial's ``metrics.json`` (and its W&B summary) carries."""
        return {"diagnosis": self.verdict, "diagnosis_evidence": self.evidence, "diagnosis_findings": list(self.findings)}


def read_history(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``history.jsonl``; a torn or malformed line (a killed writer) is skipped."""
    rows = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows


def _series(rows: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    """(step, value) for ``key``, one value per step (the last), the Trainer's closing summary left out."""
    by_step: dict[int, float] = {}
    for row in rows:
        value = row.get(key)
        if "train_runtime" in row or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        by_step[row["step"]] = float(value)
    return sorted(by_step.items())


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _start(train: list[tuple[int, float]], evals: list[tuple[int, float]]) -> tuple[str, list[tuple[int, float]], float] | None:
    """(name, series, starting value): the eval loss when it was measured at step 0 (one fixed set,
    little noise), else the train loss as a rolling mean of 3 points (one batch's loss can sit 20%
    above the next one's: the raw points would fake rises)."""
    if evals and evals[0][0] == 0 and len(evals) >= 2:
        return "eval loss", evals, evals[0][1]
    if len(train) >= 3:
        smooth = [(train[i][0], statistics.fmean(v for _, v in train[max(0, i - 2): i + 1])) for i in range(len(train))]
        return "train loss (rolling mean of 3)", [train[0]] + smooth[2:], train[0][1]
    return None


def _diverged(train: list[tuple[int, float]], evals: list[tuple[int, float]]) -> dict[str, Any] | None:
    for name, series in (("train loss", train), ("eval loss", evals)):
        bad = next(((s, v) for s, v in series if not math.isfinite(v)), None)
        if bad:
            return {"rule": "diverged", "step": bad[0], "evidence": f"{name} is {bad[1]} at step {bad[0]}"}
    ref = _start(train, evals)
    if ref is None or len(ref[1]) < 3 or ref[2] <= 0:
        return None
    name, series, start = ref
    end = series[-1][1]
    if end >= DIVERGE_END * start:
        return {"rule": "diverged", "start": start, "end": end,
                "evidence": f"{name} ends at {_fmt(end)}, {end / start:.1f}x where it started ({_fmt(start)}): the model was damaged"}
    peak_step, peak = max(series[1:], key=lambda p: p[1])
    if peak >= DIVERGE_PEAK * start:
        return {"rule": "diverged", "step": peak_step, "start": start, "peak": peak,
                "evidence": f"{name} blew up to {_fmt(peak)} at step {peak_step}, {peak / start:.1f}x its start {_fmt(start)}"}
    return None


def _oscillating(train: list[tuple[int, float]], evals: list[tuple[int, float]]) -> dict[str, Any] | None:
    ref = _start(train, evals)
    if ref is not None and len(ref[1]) >= 3 and ref[2] > 0:
        name, series, start = ref
        peak_step, peak = max(series[1:], key=lambda p: p[1])
        if peak >= (1 + OSCILLATION_RISE) * start:
            return {"rule": "oscillating", "step": peak_step, "start": start, "peak": peak,
                    "evidence": f"{name} rose to {_fmt(peak)} at step {peak_step}, {peak / start - 1:.0%} above its start "
                                f"{_fmt(start)}, before it fell: the learning rate is too high"}
    if len(evals) >= MIN_EVAL_POINTS:
        turns, last_sign = 0, 0
        for (_, a), (_, b) in zip(evals, evals[1:]):
            if abs(b - a) <= OSCILLATION_STEP * abs(a):
                continue
            sign = 1 if b > a else -1
            turns += last_sign != 0 and sign != last_sign
            last_sign = sign
        if turns >= OSCILLATION_TURNS:
            return {"rule": "oscillating", "turns": turns,
                    "evidence": f"eval loss changed direction {turns} times by more than {OSCILLATION_STEP:.0%} each"}
    if len(train) >= MIN_TRAIN_POINTS:
        values = [v for _, v in train]
        variation = sum(abs(b - a) for a, b in zip(values, values[1:]))
        fall = values[0] - min(values[-3:])
        # a loss that barely fell is underfitting's to judge: its ratio would only measure batch noise
        if fall >= UNDERFIT_DROP * values[0] and variation / fall >= OSCILLATION_RATIO:
            return {"rule": "oscillating", "variation": variation, "fall": fall,
                    "evidence": f"train loss moved {_fmt(variation)} in all for a net fall of {_fmt(fall)} "
                                f"({variation / fall:.1f}x): it zigzags instead of descending"}
    return None


def _overfitting(train: list[tuple[int, float]], evals: list[tuple[int, float]]) -> dict[str, Any] | None:
    if len(evals) < MIN_EVAL_POINTS:
        return None
    i = min(range(len(evals)), key=lambda j: evals[j][1])
    (best_step, best), (last_step, last) = evals[i], evals[-1]
    after = len(evals) - 1 - i
    if after < OVERFIT_AFTER or last < best * (1 + OVERFIT_RISE):
        return None
    train_then = [v for s, v in train if s <= best_step]
    train_note = ""
    if train_then and train and train[-1][1] < train_then[-1]:
        train_note = f", while train loss kept falling ({_fmt(train_then[-1])} -> {_fmt(train[-1][1])})"
    return {"rule": "overfitting", "min_step": best_step, "min_eval_loss": best, "final_eval_loss": last,
            "evidence": f"eval loss {_fmt(last)} at step {last_step} is {last / best - 1:.0%} above its minimum "
                        f"{_fmt(best)} at step {best_step}{train_note}"}


def _underfitting(train: list[tuple[int, float]], evals: list[tuple[int, float]]) -> dict[str, Any] | None:
    series, name = (evals, "eval loss") if len(evals) >= MIN_EVAL_POINTS else (train, "train loss")
    if len(series) < 3:
        return None
    values = [v for _, v in series]
    first = values[0]
    if first <= 0:
        return None
    end = min(values[-2:]) if name == "eval loss" else statistics.fmean(values[-3:])
    drop = (first - end) / first
    if drop < UNDERFIT_DROP:
        return {"rule": "underfitting", "first": first, "end": end, "drop": drop,
                "evidence": f"{name} barely falls: {_fmt(first)} -> {_fmt(end)} ({drop:.0%}, under {UNDERFIT_DROP:.0%})"}
    half = values[len(values) // 2]
    late_gain = (half - end) / half if half > 0 else 0.0
    if late_gain < PLATEAU_GAIN and drop < PLATEAU_DROP:
        return {"rule": "underfitting", "first": first, "end": end, "drop": drop, "late_gain": late_gain,
                "evidence": f"{name} plateaus high: {late_gain:.1%} gained over the second half, {drop:.0%} in all"}
    return None


def _grad_spikes(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    grads = [(s, v) for s, v in _series(rows, "grad_norm") if math.isfinite(v)]
    if len(grads) < MIN_TRAIN_POINTS:
        return None
    median = statistics.median(v for _, v in grads)
    spikes = [(s, v) for s, v in grads[1:] if median > 0 and v > SPIKE_FACTOR * median]
    if not spikes:
        return None
    step, worst = max(spikes, key=lambda p: p[1])
    return {"rule": "grad_spikes", "spikes": len(spikes), "median": median, "worst": worst, "step": step,
            "evidence": f"{len(spikes)} gradient-norm spike(s), the worst {_fmt(worst)} at step {step} "
                        f"({worst / median:.0f}x the median {_fmt(median)})"}


def diagnose(rows: list[dict[str, Any]]) -> Diagnosis:
    """The verdict on one trial's training curves, with the numbers behind it."""
    train, evals = _series(rows, "train_loss"), _series(rows, "eval_loss")
    diverged = _diverged(train, evals)  # a NaN needs no minimum number of points
    if diverged is None and len(train) < MIN_TRAIN_POINTS and len(evals) < MIN_EVAL_POINTS:
        return Diagnosis("insufficient_data", f"{len(train)} train-loss and {len(evals)} eval-loss points: "
                                              f"at least {MIN_TRAIN_POINTS} or {MIN_EVAL_POINTS} are needed")
    findings = [f for f in (diverged, _oscillating(train, evals), _overfitting(train, evals),
                            _underfitting(train, evals), _grad_spikes(rows)) if f]
    if not findings:
        checked = "" if len(evals) >= MIN_EVAL_POINTS else f" (overfitting not checked: {len(evals)} eval-loss points)"
        first, last = (train[0][1], train[-1][1]) if train else (evals[0][1], evals[-1][1])
        return Diagnosis("healthy", f"loss fell steadily, {_fmt(first)} -> {_fmt(last)}{checked}")
    return Diagnosis(findings[0]["rule"], findings[0]["evidence"], tuple(findings))
