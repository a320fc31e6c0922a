"""Cost of the generation stop check per step, against the whole-text check it replaced.

    python perf/bench_stop_check.py --batch 64 --new-tokens 512

Decodes random token rows of the embedded tiny tokenizer (built or loaded from the cache) the
way an engine checks its rows: once per step, on each row's new tokens so far. Prints the
mean seconds per step at a few lengths for the tail check (``evaluators.engines.StopCheck``)
and the whole-text check, and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    import torch

    from evaluators.engines import StopCheck
    from harness.config import compose, trial_config
    from harness.models import load_tokenizer, resolve_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=512)
    args = parser.parse_args()
    cfg = trial_config(compose([]))
    tokenizer = load_tokenizer(resolve_model(cfg.model, cache_dir=cfg.cache_dir)[0])
    stop = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
    g = torch.Generator().manual_seed(0)
    # tokens that never complete a stop sequence: every row runs to the end, the worst case for both checks
    safe = [i for i in range(len(tokenizer)) if "\n" not in tokenizer.decode([i]) and i != tokenizer.eos_token_id]
    ids = torch.tensor(safe)[torch.randint(0, len(safe), (args.batch, args.new_tokens), generator=g)].tolist()
    tail = StopCheck(tokenizer, stop)

    def whole(rows):
        return [tail.hit(text) for text in tokenizer.batch_decode(rows, skip_special_tokens=False)]

    for name, check in (("tail (ours)", tail.done), ("whole text", whole)):
        marks, t0 = {}, time.perf_counter()
        for t in range(1, args.new_tokens + 1):
            check([row[:t] for row in ids])
            if t in (64, 128, 256, 512) and t <= args.new_tokens:
                marks[t] = time.perf_counter() - t0
        per_step = {t: f"{1e3 * (v - marks.get(t // 2, 0)) / (t - t // 2 if t > 64 else t):.2f} ms" for t, v in marks.items()}
        print(f"{name:12s} batch {args.batch}: total {time.perf_counter() - t0:.2f} s for {args.new_tokens} steps; "
              f"per step around new token: {per_step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
