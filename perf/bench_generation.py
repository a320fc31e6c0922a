"""Greedy generation speed on the embedded tiny model, and the completions, for side-by-side runs.

    python perf/bench_generation.py --label now            # writes /tmp/generation-now.json
    git stash; python perf/bench_generation.py --label before; git stash pop
    python perf/bench_generation.py --compare /tmp/generation-before.json /tmp/generation-now.json

Generates for the toy test split (188 prompts), greedy, 40 new tokens, batch 16, 1 thread,
``--reps`` times; prints min and median seconds, and with ``--compare`` how many completions
of two runs differ (greedy outputs must not change when only scheduling does).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="now")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--compare", nargs=2, type=Path)
    args = parser.parse_args()
    if args.compare:
        a, b = (json.loads(p.read_text())["completions"] for p in args.compare)
        print(f"{sum(x != y for x, y in zip(a, b))} of {len(a)} prompts differ")
        return 0
    import torch

    import evaluators.generate as gen
    from evaluators.benchmarks import load_benchmark
    from harness.config import compose, trial_config
    from harness.models import load_model, load_tokenizer, resolve_model

    torch.set_num_threads(1)
    cfg = trial_config(compose([]))
    path, _ = resolve_model(cfg.model, cache_dir=cfg.cache_dir)
    tokenizer, model = load_tokenizer(path), load_model(path, cfg=cfg.model, device="cpu")
    bench = load_benchmark("toy", split="test")
    prompts = [t.prompt for t in bench.tasks]
    settings = gen.GenerationSettings(n_samples=1, temperature=0.0, max_new_tokens=40, batch_size=16)
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        out = gen.generate(model, tokenizer, prompts, settings=settings, stop=bench.stop)
        times.append(time.perf_counter() - t0)
    print(f"{args.label}: {len(prompts)} prompts, min {min(times):.2f} s, median {statistics.median(times):.2f} s "
          f"({len(prompts) / min(times):.0f} samples/s at best)")
    Path(f"/tmp/generation-{args.label}.json").write_text(json.dumps({"times": times, "completions": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
