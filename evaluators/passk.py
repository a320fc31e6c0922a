"""The unbiased pass@k estimator (Chen et al., 2021, "Evaluating Large Language Models Trained on Code").

For a task with n samples of which c are correct:

    pass@k = 1 - C(n - c, k) / C(n, k)

computed as a running product to stay exact in floating point for large n.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["pass_at_k", "mean_pass_at_k", "PassAtKError"]


class PassAtKError(ValueError):
    """k is larger than the number of samples of some task, or counts are inconsistent."""


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task with ``n`` samples, ``c`` of them correct."""
    if not 0 <= c <= n:
        raise PassAtKError(f"need 0 <= c <= n, got n={n} c={c}")
    if k < 1:
        raise PassAtKError(f"k must be >= 1, got k={k}")
    if k > n:
        raise PassAtKError(f"pass@{k} needs at least {k} samples per task, got n={n}")
    if n - c < k:
        return 1.0
    # 1 - prod_{i = n-c+1}^{n} (1 - k / i)
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def mean_pass_at_k(counts: Mapping[str, tuple[int, int]], ks: Iterable[int]) -> dict[str, float]:
    """Mean pass@k over tasks. ``counts`` maps task_id -> (n, c).

    Returns ``{"pass@k": value}`` for every requested k; refuses a k larger than the
    smallest n (a benchmark-level pass@k must use the same k for every task).
    """
    if not counts:
        raise PassAtKError("no tasks to score")
    min_n = min(n for n, _ in counts.values())
    out: dict[str, float] = {}
    for k in sorted(set(ks)):
        if k > min_n:
            raise PassAtKError(f"pass@{k} needs at least {k} samples per task; the smallest task has n={min_n}")
        out[f"pass@{k}"] = sum(pass_at_k(n, c, k) for n, c in counts.values()) / len(counts)
    return out
