"""Pruning on the validation probe against pruning on eval loss, over several seeds (docs/probe.md).

    python perf/probe_pruning.py --runs runs/probe-pruning [--seeds 0 1 2] [--n-trials 6] [-- overrides ...]

For each seed and each ``study.prune_on`` (eval_loss, probe) it runs one small lora_rank study
(sampler and training seeded with the seed; fewer startup trials for the median pruner so that
it acts in a small study; no suites), then prints Markdown tables: which trials each study
stopped and when, the best final test pass@1, the test pass@1 of the trial the probe ranks
first, the probe's total time and the study's wall time; then mean and spread across seeds.
A study already complete under ``--runs`` is not rerun (its recorded wall time is reused).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODES = ("eval_loss", "probe")
BASE = ["+sweep=lora_rank", "eval.sandbox=process", "tracking=none", "eval.suites=[]",
        "study.pruner.n_startup_trials=2"]


def run_study(runs: Path, mode: str, seed: int, n_trials: int, extra: list[str]) -> dict:
    name = f"prune-{mode}-s{seed}"
    timing = runs / f"{name}.time.json"
    if timing.exists():
        return json.loads(timing.read_text())
    # study.max_trials: with one startup trial the median pruner stops most trials, and the default cap
    # (3 x n_trials) ended seed 1's eval-loss study at 3 of 4 complete (exit 1)
    args = [*BASE, f"study.name={name}", f"study.prune_on={mode}", f"study.n_trials={n_trials}", f"study.max_trials={10 * n_trials}",
            f"study.sampler.seed={seed}", f"seed={seed}", f"runs_dir={runs}", *extra]
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness.sweep", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    (runs / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed (exit {proc.returncode}); see {runs / (name + '.log')}")
    out = {"study": name, "mode": mode, "seed": seed, "wall_s": round(time.perf_counter() - started, 1)}
    timing.write_text(json.dumps(out))
    return out


def summarize(runs: Path, run: dict) -> dict:
    study_dir = runs / run["study"]
    trials, probe_s = [], 0.0
    for d in sorted(study_dir.glob("trial-*"), key=lambda p: int(p.name.split("-")[1])):
        manifest = json.loads((d / "manifest.json").read_text())
        metrics = json.loads((d / "metrics.json").read_text()) if (d / "metrics.json").exists() else {}
        probe_s += (manifest.get("timings_s") or {}).get("probe", 0.0)
        trials.append({"n": int(d.name.split("-")[1]), "status": manifest["status"], "reason": manifest.get("reason") or "",
                       "test": metrics.get("toy/pass@1"), "probe": metrics.get("probe/pass@1")})
    complete = [t for t in trials if t["status"] == "complete" and t["test"] is not None]
    by_probe = max(complete, key=lambda t: (t["probe"] if t["probe"] is not None else -1, -t["n"]))
    pruned = [f"{t['n']}@{t['reason'].split('step ')[1].split(' ')[0]}" for t in trials if t["status"] == "pruned"]
    return {**run, "complete": len(complete), "pruned": pruned, "best_test": max(t["test"] for t in complete),
            "probe_pick_test": by_probe["test"], "probe_s": round(probe_s, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "probe-pruning")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-trials", type=int, default=6)
    parser.add_argument("extra", nargs="*", help="more Hydra overrides for every study")
    args = parser.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        for mode in MODES:
            rows.append(summarize(args.runs, run_study(args.runs.resolve(), mode, seed, args.n_trials, args.extra)))
            print(f"done: {rows[-1]['study']} ({rows[-1]['wall_s']} s)", file=sys.stderr, flush=True)
    print("| prune_on | seed | complete | pruned (trial@step) | best test pass@1 | test pass@1 of the probe's #1 | probe time (s) | study wall (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['seed']} | {r['complete']} | {', '.join(r['pruned']) or '-'} | {r['best_test']:.3f} | "
              f"{r['probe_pick_test']:.3f} | {r['probe_s']:.1f} | {r['wall_s']:.0f} |")
    print()
    print("| prune_on | pruned trials (mean) | best test pass@1 (mean +- sd) | probe's #1 on test (mean +- sd) | study wall s (mean +- sd) |")
    print("|---|---|---|---|---|")
    for mode in MODES:
        rs = [r for r in rows if r["mode"] == mode]

        def ms(key: str, fmt: str = ".3f") -> str:
            values = [r[key] for r in rs]  # noqa: B023 - called at once, inside the loop
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.fmean(values):{fmt}} +- {sd:{fmt}}"

        print(f"| {mode} | {statistics.fmean(len(r['pruned']) for r in rs):.1f} | {ms('best_test')} | "
              f"{ms('probe_pick_test')} | {ms('wall_s', '.0f')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
