"""The gate's statistics against values computed by hand and by scipy, and its calibration on a small simulation."""

from __future__ import annotations

import math

import pytest

from reports.stats import clopper_pearson, compare_paired, decide, holm, mcnemar_exact_p


def test_exact_mcnemar_by_hand():
    # 8 problems only the baseline solves, 2 only the candidate: P(Bin(10, 1/2) >= 8) = (45 + 10 + 1) / 1024
    assert mcnemar_exact_p(8, 2, n_problems=100) == pytest.approx(56 / 1024, abs=1e-12)
    assert mcnemar_exact_p(0, 0, n_problems=100) == 1.0
    # with a margin the null rate moves: drop = m (2 pi - 1) / N = 0.02 -> pi = (1 + 100 * 0.02 / 10) / 2 = 0.6
    from scipy.stats import binom

    assert mcnemar_exact_p(8, 2, n_problems=100, margin=0.02) == pytest.approx(binom.sf(7, 10, 0.6), abs=1e-12)


def test_clopper_pearson_matches_scipy():
    from scipy.stats import binomtest

    for k, n in [(0, 20), (3, 20), (20, 20), (57, 164)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=0.90, method="exact")  # two-sided 90% = one-sided 95% each
        lo, hi = clopper_pearson(k, n, 0.05)
        assert lo == pytest.approx(ci.low, abs=1e-9) and hi == pytest.approx(ci.high, abs=1e-9)


def test_paired_t_matches_scipy():
    from scipy.stats import ttest_rel

    base = {f"t{i}": [int((i * 7 + s) % 5 < 3 + i % 3) for s in range(10)] for i in range(40)}
    cand = {f"t{i}": [int((i * 3 + s) % 7 < 2 + i % 2) for s in range(10)] for i in range(40)}
    c = compare_paired(base, cand)
    rb = [sum(base[t]) / 10 for t in sorted(base)]
    rc = [sum(cand[t]) / 10 for t in sorted(cand)]
    assert c.p_value == pytest.approx(ttest_rel(rb, rc, alternative="greater").pvalue, rel=1e-9)
    assert c.drop == pytest.approx(sum(rb) / 40 - sum(rc) / 40)
    assert c.lower < c.drop < c.upper and c.method.startswith("paired t")


def test_greedy_bounds_do_not_trust_zero_discordance_on_a_small_benchmark():
    same = {f"t{i}": [i % 2] for i in range(12)}
    c = compare_paired(same, dict(same))
    assert c.drop == 0 and c.upper > 0.2  # 12 agreeing problems cannot exclude a 5-point drop
    assert decide({"toy": c}).decision == "inconclusive"


def test_lower_is_better_scores_flip_the_direction():
    base = {f"t{i}": [1.0] for i in range(40)}
    cand = {f"t{i}": [1.5 + 0.01 * i] for i in range(40)}  # a loss-like score went up: worse
    assert compare_paired(base, cand, higher_is_better=False).drop > 0


def test_holm_known_values():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]


def test_decide_regression_pass_inconclusive():
    n = 164
    base = {f"t{i}": [1] * 20 if i < 100 else [0] * 20 for i in range(n)}
    worse = {t: ([0] * 20 if int(t[1:]) < 20 else v) for t, v in base.items()}  # 20 of 164 problems lost: -12 points
    assert decide({"b": compare_paired(base, worse)}).decision == "regression"
    assert decide({"b": compare_paired(base, dict(base))}).decision == "pass"
    v = decide({"b": compare_paired(base, worse, margin=0.2)}, min_effect=0.1)  # 12 points: not beyond 20, not below 10
    assert v.decision == "inconclusive" and "b:" in v.reason


def test_calibration_on_a_small_simulation():
    """The documented goals, on 150 repetitions (docs/gate.md has the full table)."""
    from perf.gate_simulation import simulate

    rows = {r["case"]: r for r in simulate(reps=150, problems=164, seed=1)}
    assert rows["equal quality, 20 samples"]["regression"] <= 0.10
    assert rows["equal quality, greedy"]["regression"] <= 0.10
    assert rows["5-point drop, 20 samples"]["regression"] >= 0.80
    assert rows["5-point drop, 20 samples"]["pass"] <= 0.05
    assert rows["3 points better, 20 samples"]["pass"] >= 0.90
    assert math.isclose(sum(rows["5-point drop, greedy"][k] for k in ("pass", "regression", "inconclusive")), 1.0)


def test_per_problem_pass_at_k_and_intervals():
    from reports.stats import mean_interval, per_problem_pass_at_k

    assert per_problem_pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert per_problem_pass_at_k(10, 3, 5) == pytest.approx(1 - math.comb(7, 5) / math.comb(10, 5))
    assert per_problem_pass_at_k(5, 4, 2) == 1.0
    lo, hi = mean_interval([0.0, 1.0] * 50)
    from scipy.stats import t

    half = t.ppf(0.975, 99) * math.sqrt(0.25 * 100 / 99 / 100)
    assert lo == pytest.approx(0.5 - half) and hi == pytest.approx(0.5 + half)
    assert mean_interval([1.0]) == (0.0, 1.0)


@pytest.mark.parametrize("b, c", [(8, 1), (5, 1), (3, 0), (10, 4), (0, 0), (2, 6)])
def test_greedy_lower_bound_and_mcnemar_agree(b, c):
    n = 188
    base = {f"t{i}": [1 if i < b else 0 if i < b + c else i % 2] for i in range(n)}
    cand = {f"t{i}": [0 if i < b else 1 if i < b + c else i % 2] for i in range(n)}
    r = compare_paired(base, cand)
    assert r.drop == pytest.approx((b - c) / n)
    assert (r.lower > 0) == (r.p_value < 0.05), (r.lower, r.p_value)


def test_bootstrap_ratio_difference_is_a_difference_of_ratios_of_sums():
    from reports.stats import bootstrap_ratio_difference

    base = [(10.0, 5.0), (30.0, 10.0), (2.0, 1.0)]  # ratio of sums 42/16, not the mean of 2, 3, 2
    cand = [(12.0, 5.0), (33.0, 10.0), (2.0, 1.0)]  # 47/16
    est, lo, hi = bootstrap_ratio_difference(base, cand, reps=500)
    assert est == pytest.approx(5 / 16) and 0 <= lo <= est <= hi  # no document got better: no resample is below 0
    assert bootstrap_ratio_difference(base, base, reps=200) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        bootstrap_ratio_difference(base, cand[:2])
