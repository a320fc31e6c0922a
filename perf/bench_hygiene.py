"""Hygiene speed: rules + exact dedup + near-dedup + decontamination over synthetic records.

    python perf/bench_hygiene.py [--records 100000] [--tokenizer]

Records are alpaca-style: a one-line instruction and a small Python function built from
random names, operators and constants (with 5% exact and 5% renamed copies planted),
decontaminated against HumanEval, MBPP (test) and toy. Prints the time per stage.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from harness.data.config import HygieneConfig
from harness.data.formats import to_example
from harness.data.hygiene import clean

WORDS = "alpha beta gamma delta total count value item score price index node edge row col key".split()
OPS = ["+", "-", "*", "//", "%"]


def synthetic(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i > 100 and rng.random() < 0.05:
            out.append(dict(out[rng.randrange(len(out))]))  # exact copy
            continue
        a, b, c = rng.sample(WORDS, 3)
        f = f"{a}_{b}_{i}"
        body = [f"def {f}({a}, {b}):", f'    """Combine {a} and {b} into {c}."""', f"    {c} = 0"]
        for _ in range(rng.randint(1, 6)):
            body.append(f"    {c} = {c} {rng.choice(OPS)} ({a} {rng.choice(OPS)} {rng.randint(1, 99)})")
        body += [f"    if {c} > {b}:", f"        {c} -= {b}", f"    return {c}"]
        code = "\n".join(body)
        if i > 100 and rng.random() < 0.05:
            code = code.replace(a, "renamed_" + a)  # renamed near-copy of itself (new function)
        out.append({"instruction": f"Write a function {f} that combines {a} and {b}.", "output": f"```python\n{code}\n```"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--tokenizer", action="store_true", help="count lengths with the tiny BPE tokenizer")
    args = parser.parse_args()
    t0 = time.perf_counter()
    records = synthetic(args.records)
    examples = [to_example(r, "alpaca", source="synthetic", ref=str(i)) for i, r in enumerate(records)]
    t_gen = time.perf_counter() - t0
    count = None
    if args.tokenizer:
        from harness.data.testing import tiny_tokenizer

        tok = tiny_tokenizer()

        def count(texts):
            return [len(x) for x in tok(texts, add_special_tokens=False)["input_ids"]]

    t1 = time.perf_counter()
    kept, report = clean(examples, HygieneConfig(min_tokens=4, max_tokens=4096),
                         benchmarks=["humaneval", "mbpp", "toy"], count_tokens=count)
    total = time.perf_counter() - t1
    print(json.dumps({"records": len(examples), "kept": len(kept), "dropped": report["dropped"],
                      "stage_seconds": report["seconds"], "generate_seconds": round(t_gen, 2)}, indent=1))
    print(f"hygiene over {len(examples):,} records: {total:.1f} s ({len(examples) / total:,.0f} records/s)")


if __name__ == "__main__":
    main()
