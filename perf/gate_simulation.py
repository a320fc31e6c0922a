"""Calibration of the release gate's decision rule (reports/stats.py) by simulation.

    python perf/gate_simulation.py [--reps 1000] [--problems 164] [--seed 0]

Model of the world (stated in docs/gate.md):

- 164 problems; the baseline's per-problem pass probability p_i is drawn from Beta(0.35, 0.35)
  (U-shaped: many problems almost always or almost never solved, like HumanEval), mean ~0.5;
- the candidate's p'_i = p_i - delta_i. "spread": the drop is spread over every problem with
  room to drop, in proportion to that room (p_i). "concentrated": the whole drop falls on a
  random tenth of the problems, drawn among those the baseline solves more often than not
  (each loses about half its pass rate). Improvements
  use 1 - p_i as the room;
- greedy (n = 1): each side's outcome is one Bernoulli(p) draw per problem, i.e. two
  different models of the stated quality, not the same model twice (that one never differs);
- sampled (n = 20): each side draws n Bernoulli(p) per problem.

Each row reports the share of repetitions with each verdict at margin 0, smallest drop that
matters 5 points, alpha 0.05, one benchmark.
"""

from __future__ import annotations

import argparse
import random
import time

from reports.stats import compare_paired, decide


def _problems(rng: random.Random, n: int) -> list[float]:
    return [rng.betavariate(0.35, 0.35) for _ in range(n)]


def _shift(rng: random.Random, p: list[float], drop: float, how: str) -> list[float]:
    """Candidate probabilities whose mean is lower by ``drop`` (negative: an improvement)."""
    n = len(p)
    if drop == 0:
        return list(p)
    room = [pi if drop > 0 else 1 - pi for pi in p]
    if how == "concentrated":  # a tenth of the problems, among those with room to lose (p_i > 0.5)
        eligible = [i for i, r in enumerate(room) if r > 0.5]
        chosen = set(rng.sample(eligible, min(len(eligible), max(1, n // 10))))
        room = [r if i in chosen else 0.0 for i, r in enumerate(room)]
    total = sum(room)
    scale = abs(drop) * n / total
    if scale > 1:
        raise ValueError("the drop is larger than the room the problems leave")
    sign = 1 if drop > 0 else -1
    return [pi - sign * scale * r for pi, r in zip(p, room)]


def _draw(rng: random.Random, p: list[float], n: int) -> dict[str, list[int]]:
    return {f"t{i}": [int(rng.random() < pi) for _ in range(n)] for i, pi in enumerate(p)}


CASES = [
    # (name, true drop, samples per problem, how the drop is spread)
    ("equal quality, greedy", 0.0, 1, "spread"),
    ("equal quality, 20 samples", 0.0, 20, "spread"),
    ("5-point drop, 20 samples", 0.05, 20, "spread"),
    ("5-point drop in a tenth of problems, 20 samples", 0.05, 20, "concentrated"),
    ("3 points better, 20 samples", -0.03, 20, "spread"),
    ("5-point drop, greedy", 0.05, 1, "spread"),
]


def simulate(reps: int, problems: int, seed: int) -> list[dict]:
    rows = []
    for name, drop, n, how in CASES:
        rng = random.Random(f"{seed}:{name}")
        counts = {"pass": 0, "regression": 0, "inconclusive": 0}
        for _ in range(reps):
            p = _problems(rng, problems)
            q = _shift(rng, p, drop, how)
            comparison = compare_paired(_draw(rng, p, n), _draw(rng, q, n))
            counts[decide({"bench": comparison}).decision] += 1
        rows.append({"case": name, "true_drop": drop, "n": n, **{k: v / reps for k, v in counts.items()}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--problems", type=int, default=164)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.time()
    rows = simulate(args.reps, args.problems, args.seed)
    print(f"{args.problems} problems, {args.reps} repetitions per case, margin 0, smallest drop that matters 5 points, alpha 0.05\n")
    print("| case | true drop | samples/problem | regression | pass | inconclusive |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {100 * r['true_drop']:+.0f} pts | {r['n']} | {100 * r['regression']:.1f}% | "
              f"{100 * r['pass']:.1f}% | {100 * r['inconclusive']:.1f}% |")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
