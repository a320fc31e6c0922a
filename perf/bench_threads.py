"""Torch CPU threads per trial, measured per situation: one local worker, or two sharing the machine.

    python perf/bench_threads.py [--reps 2]

Runs the smoke study (2 trials of the embedded model, process sandbox, no tracker) with one
local worker and with two (``launcher.n_workers=2``, journal storage), at ``train.num_threads``
1, 2 and the default (``null``: the cores this process may use / local workers). Situations are
interleaved round by round. Prints the median seconds of each phase per trial (from the trial
manifests' ``timings_s``) and of the whole study (wall clock, both trials).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHASES = ("train", "probe", "generate", "suites")
SITUATIONS = {  # label -> (launcher.n_workers, train.num_threads)
    "1 worker, 1 thread": (1, "1"),
    "1 worker, 2 threads": (1, "2"),
    "1 worker, default": (1, "null"),
    "2 workers, 2 threads each": (2, "2"),
    "2 workers, 1 thread each": (2, "1"),
    "2 workers, default": (2, "null"),
}


def run_study(runs_dir: Path, n_workers: int, threads: str) -> tuple[float, list[dict]]:
    cmd = [sys.executable, "-m", "harness.sweep", "+sweep=smoke", "study.name=threads", "tracking=none",
           "eval.sandbox=process", f"train.num_threads={threads}", f"runs_dir={runs_dir}", f"launcher.n_workers={n_workers}",
           *(["storage=journal"] if n_workers > 1 else [])]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return wall, [json.loads(m.read_text()) for m in sorted((runs_dir / "threads").glob("trial-*/manifest.json"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    walls: dict[str, list[float]] = {k: [] for k in SITUATIONS}
    trials: dict[str, list[dict]] = {k: [] for k in SITUATIONS}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for i, (k, (n_workers, threads)) in enumerate(SITUATIONS.items()):
                wall, ms = run_study(Path(tmp) / f"{rep}-{i}", n_workers, threads)
                walls[k].append(wall)
                trials[k] += ms
                print(f"  round {rep}: {k}: {wall:.1f} s", file=sys.stderr, flush=True)
    print(f"{len(os.sched_getaffinity(0))} cores; the smoke study (2 trials: 30 steps, 2 probes, 12 toy tasks, suites); "
          f"{args.reps} rounds; medians in seconds (phases per trial)")
    print("| situation | threads used | " + " | ".join(PHASES) + " | study wall clock |")
    print("|---|---|" + "---|" * (len(PHASES) + 1))
    for k in SITUATIONS:
        used = sorted({m.get("threads") for m in trials[k]})
        cells = [statistics.median(m["timings_s"].get(p, 0.0) for m in trials[k]) for p in PHASES]
        print(f"| {k} | {', '.join(map(str, used))} | " + " | ".join(f"{c:.2f}" for c in cells)
              + f" | {statistics.median(walls[k]):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
