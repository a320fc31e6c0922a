"""Paired comparison of two evaluations over the same problems (pure: records in, numbers out).

Used by the release gate (``harness.gate``) and the reports. Everything is paired over
problems, so problem difficulty cancels out: per problem ``i`` the outcome of each side is its
mean over samples (pass rate for pass/fail rows, mean ``score`` for scored rows), and the
*drop* is ``d_i = baseline_i - candidate_i`` in the metric's own direction (positive = the
candidate is worse). The drop of the benchmark is the mean of the ``d_i``.

Bounds on the drop, one-sided at level ``1 - alpha`` each (docs/gate.md):

1. **Greedy pass/fail** (one sample per problem on both sides): with ``b`` problems only the
   baseline solves and ``c`` only the candidate solves out of ``N``, drop = P10 - P01. The
   p-value of "drop > margin" is the exact McNemar test (conditional binomial on the ``m = b + c``
   discordant problems) and ``L`` its inversion (Clopper-Pearson on ``b`` of ``m``), so
   ``L > margin`` exactly when ``p < alpha``. ``U = hi(b) - lo(c)`` from exact Clopper-Pearson
   bounds on both discordant rates at ``alpha/2`` each (Bonferroni): unconditional, so zero
   discordant problems on a small benchmark do not "prove" that no drop exists.
2. **Sampled or scored** (``n > 1`` or float scores): Student-t bounds on the mean of the
   ``d_i`` over problems, and the paired t-test of "drop > margin". Below ``MIN_T_PROBLEMS``
   problems the bounds are Hoeffding's (``d_i`` lies in [-1, 1]) instead: slower, not fooled by
   a small sample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PairedComparison", "Verdict", "compare_paired", "decide", "holm", "mcnemar_exact_p", "clopper_pearson",
    "mean_interval", "per_problem_pass_at_k", "bootstrap_ratio_difference",
]

MIN_T_PROBLEMS = 30


@dataclass(frozen=True)
class PairedComparison:
    n_problems: int
    samples_baseline: int  # per problem (smallest)
    samples_candidate: int
    baseline: float  # mean per-problem outcome (pass@1 for pass/fail rows)
    candidate: float
    drop: float  # baseline - candidate in the metric's direction (positive: candidate worse)
    lower: float  # one-sided (1 - alpha) lower bound on the drop
    upper: float  # one-sided (1 - alpha) upper bound on the drop
    p_value: float  # one-sided, for "drop > margin"
    margin: float
    method: str
    worse: list[str] = field(default_factory=list)  # problems the candidate does worse on
    better: list[str] = field(default_factory=list)


def clopper_pearson(k: int, n: int, alpha: float) -> tuple[float, float]:
    """One-sided exact bounds (each at level 1 - alpha) on a binomial rate: (lower, upper)."""
    from scipy.stats import beta

    lo = 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha, k + 1, n - k))
    return lo, hi


def mcnemar_exact_p(b: int, c: int, *, n_problems: int, margin: float = 0.0) -> float:
    """Exact one-sided p-value of "the drop exceeds ``margin``" from the discordant counts:
    conditional on m = b + c, b ~ Binomial(m, pi) with drop = m (2 pi - 1) / N."""
    from scipy.stats import binom

    m = b + c
    if m == 0:
        return 1.0
    pi0 = min(1.0, 0.5 * (1.0 + n_problems * margin / m))
    return float(binom.sf(b - 1, m, pi0))


def _t_quantile(q: float, dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(q, dof))


def compare_paired(
    baseline: Mapping[str, Sequence[float]],
    candidate: Mapping[str, Sequence[float]],
    *,
    alpha: float = 0.05,
    margin: float = 0.0,
    higher_is_better: bool = True,
) -> PairedComparison:
    """Compare per-problem outcomes (task id -> outcome of each sample, 0/1 or a score).

    The two mappings must have the same task ids (the gate refuses records that do not).
    """
    if set(baseline) != set(candidate):
        raise ValueError("the two evaluations must cover the same problems")
    tasks = sorted(baseline)
    if not tasks:
        raise ValueError("no problems to compare")
    sign = 1.0 if higher_is_better else -1.0
    rb = [sum(baseline[t]) / len(baseline[t]) for t in tasks]
    rc = [sum(candidate[t]) / len(candidate[t]) for t in tasks]
    d = [sign * (x - y) for x, y in zip(rb, rc)]
    n = len(tasks)
    drop = sum(d) / n
    nb, nb_max = min(len(baseline[t]) for t in tasks), max(len(baseline[t]) for t in tasks)
    ncand = min(len(candidate[t]) for t in tasks)
    binary = all(v in (0, 1, True, False) for t in tasks for v in (*baseline[t], *candidate[t]))
    worse = [t for t, x in zip(tasks, d) if x > 0]
    better = [t for t, x in zip(tasks, d) if x < 0]
    common: dict[str, Any] = dict(margin=margin, n_problems=n, samples_baseline=nb, samples_candidate=ncand, baseline=sum(rb) / n,
                  candidate=sum(rc) / n, drop=drop, worse=worse, better=better)
    if binary and nb == nb_max == 1 and all(len(candidate[t]) == 1 for t in tasks):
        b, c = len(worse), len(better)
        m = b + c
        # lower bound: conditional on the m discordant problems, the inversion of the exact McNemar
        # test (so "L > margin" and "p < alpha" agree); upper bound: unconditional (see the docstring)
        lower = 0.0 if m == 0 else m * (2 * clopper_pearson(b, m, alpha)[0] - 1) / n
        lo_b, hi_b = clopper_pearson(b, n, alpha / 2)
        lo_c, hi_c = clopper_pearson(c, n, alpha / 2)
        return PairedComparison(**common, lower=lower, upper=hi_b - lo_c,
                                p_value=mcnemar_exact_p(b, c, n_problems=n, margin=margin),
                                method="greedy: exact McNemar test and its bound; unconditional Clopper-Pearson upper bound")
    if n < MIN_T_PROBLEMS:
        half = math.sqrt(2.0 * math.log(1.0 / alpha) / n)  # Hoeffding, d_i in [-1, 1]
        p = math.exp(-n * max(0.0, drop - margin) ** 2 / 2.0)
        return PairedComparison(**common, lower=drop - half, upper=drop + half, p_value=min(1.0, p),
                                method=f"Hoeffding bounds (fewer than {MIN_T_PROBLEMS} problems)")
    var = sum((x - drop) ** 2 for x in d) / (n - 1)
    se = math.sqrt(var / n)
    q = _t_quantile(1 - alpha, n - 1)
    if se == 0.0:
        p = 0.0 if drop > margin else 1.0
    else:
        from scipy.stats import t

        p = float(t.sf((drop - margin) / se, n - 1))
    return PairedComparison(**common, lower=drop - q * se, upper=drop + q * se, p_value=p,
                            method="paired t over problems (per-problem rates)")


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, monotone), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Verdict:
    decision: str  # pass | regression | inconclusive
    reason: str
    adjusted_p: dict[str, float]


def decide(comparisons: Mapping[str, PairedComparison], *, alpha: float = 0.05, min_effect: float = 0.05) -> Verdict:
    """The gate's rule over benchmarks (docs/gate.md):

    - **regression** if on some benchmark the Holm-adjusted p-value of "drop > margin" (the
      margin each comparison was made with) is
      below ``alpha`` (false regressions at a true drop of ``margin``: <= alpha over the family);
    - **pass** if the upper bound on the drop is below ``min_effect`` on every benchmark
      (an intersection-union test: wrong passes at a true drop of ``min_effect`` <= alpha);
    - **inconclusive** otherwise.
    """
    names = list(comparisons)
    adjusted = dict(zip(names, holm([comparisons[n].p_value for n in names])))
    regressed = [n for n in names if adjusted[n] < alpha]
    if regressed:
        worst = max(regressed, key=lambda n: comparisons[n].drop)
        c = comparisons[worst]
        return Verdict("regression", f"{worst}: the candidate is worse by {100 * c.drop:.1f} points "
                       f"(lower bound {100 * c.lower:.1f} above the margin {100 * c.margin:.1f}; Holm-adjusted p={adjusted[worst]:.3g})", adjusted)
    open_ = [n for n in names if comparisons[n].upper >= min_effect]
    if not open_:
        return Verdict("pass", f"on every benchmark the drop is below {100 * min_effect:.1f} points "
                       f"(largest upper bound {100 * max(comparisons[n].upper for n in names):.1f})", adjusted)
    n = max(open_, key=lambda n: comparisons[n].upper)
    c = comparisons[n]
    return Verdict("inconclusive", f"{n}: a drop of up to {100 * c.upper:.1f} points cannot be excluded "
                   f"({c.samples_candidate} sample(s) per problem); {more_samples_hint(c, min_effect)}", adjusted)


def more_samples_hint(c: PairedComparison, min_effect: float) -> str:
    """A rough size for a conclusive rerun: the half-width shrinks like 1/sqrt(samples) at most."""
    half = max(c.upper - c.drop, 1e-9)
    room = min_effect - c.drop
    if room <= 0:
        return "the measured drop itself reaches the smallest drop that matters: more samples will not make it pass"
    factor = (half / room) ** 2
    needed = max(c.samples_candidate + 1, math.ceil(c.samples_candidate * factor))
    return (f"about {needed} samples per problem on both sides would be needed if the spread were all sampling noise "
            f"(more problems help where it is not)")


def per_problem_pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate of one problem from n samples with c correct (k <= n)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def mean_interval(values: Sequence[float], *, confidence: float = 0.95, lo: float = 0.0, hi: float = 1.0) -> tuple[float, float]:
    """Two-sided Student-t interval on the mean of per-problem values, clipped to [lo, hi].
    A benchmark's score varies with which problems it holds: this is that uncertainty."""
    n = len(values)
    if n < 2:
        return lo, hi
    mean = sum(values) / n
    se = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)
    q = _t_quantile(0.5 + confidence / 2, n - 1)
    return max(lo, mean - q * se), min(hi, mean + q * se)


def bootstrap_ratio_difference(
    baseline: Sequence[tuple[float, float]],
    candidate: Sequence[tuple[float, float]],
    *,
    confidence: float = 0.95,
    reps: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Candidate minus baseline of a ratio of sums (e.g. bits per byte = sum of nats / sum of bytes / ln 2),
    paired by document: (estimate, lower, upper), a percentile interval from resampling documents.

    Each side is a list of (numerator, denominator) per document, in the same document order."""
    import numpy as np

    if len(baseline) != len(candidate) or not baseline:
        raise ValueError("the two evaluations must cover the same, non-empty list of documents")
    b, c = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    estimate = c[:, 0].sum() / c[:, 1].sum() - b[:, 0].sum() / b[:, 1].sum()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(b), size=(reps, len(b)))
    diffs = c[idx, 0].sum(1) / c[idx, 1].sum(1) - b[idx, 0].sum(1) / b[idx, 1].sum(1)
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(diffs, [tail, 1 - tail])
    return float(estimate), float(lo), float(hi)
