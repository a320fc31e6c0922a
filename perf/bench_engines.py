"""Generation throughput, side by side: our engine, a plain Hugging Face loop and lm-eval's HFLM.

    python perf/bench_engines.py                        # the embedded tiny model, 188 toy prompts
    python perf/bench_engines.py --model large --prompts 32 --reps 1
    python perf/bench_engines.py --steps                # row-steps: useful share per n_samples and batch size

All three run in this one process on the same prompts (the toy test split), the same model and
1 thread, in interleaved rounds (tool A, B, C, A, B, C, ...), for three workloads: greedy; n=10
at T=0.8 with 128 new tokens; n=10 at T=1.2 with 200 new tokens (long, uneven completions). Each
at batch 16 and at its best batch size of ``--batch-sizes``. Printed per tool: samples/s, useful
tokens/s (tokens of the completions as scored, cut at the stop sequence, counted with the same
tokenizer for every tool) and the ratio to lm-eval; and how many greedy completions differ
between the tools.

- **ours**: ``evaluators.generate.generate`` with ``eval.engine`` (default ``hf``);
- **plain HF**: what a user writes: batches of prompts in input order through
  ``model.generate(stop_strings=..., num_return_sequences=n)``;
- **lm-eval**: ``HFLM(pretrained=model).generate_until`` with one request per sample, as a task's
  ``repeats`` makes them.

``--model large`` is a locally built Llama (8 layers, hidden 512, random weights) where compute
dominates the per-step overhead; its random completions never stop, so every row runs to the
token limit.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORKLOADS = {
    "greedy": {"n": 1, "temperature": 0.0, "max_new_tokens": 128},
    "n10-T0.8": {"n": 10, "temperature": 0.8, "max_new_tokens": 128},
    "n10-T1.2-long": {"n": 10, "temperature": 1.2, "max_new_tokens": 200},
}
TOP_P = 0.95


def load(kind: str):
    import torch

    from harness.config import compose, trial_config
    from harness.models import load_model, load_tokenizer, resolve_model

    cfg = trial_config(compose([]))
    path, _ = resolve_model(cfg.model, cache_dir=cfg.cache_dir)
    tokenizer = load_tokenizer(path)
    if kind == "tiny":
        return load_model(path, cfg=cfg.model, device="cpu"), tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=512, intermediate_size=1376, num_hidden_layers=8,
                         num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config).eval()
    print(f"large model: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, random weights")
    return model, tokenizer


def ours(model, tokenizer, prompts, stop, wl, batch_size, engine="hf"):
    import evaluators.generate as gen

    settings = gen.GenerationSettings(n_samples=wl["n"], temperature=wl["temperature"], top_p=TOP_P,
                                      max_new_tokens=wl["max_new_tokens"], batch_size=batch_size, engine=engine)
    return gen.generate(model, tokenizer, prompts, settings=settings, stop=stop)


def plain_hf(model, tokenizer, prompts, stop, wl, batch_size):
    import torch

    from evaluators.generate import truncate_at_stop

    n = wl["n"]
    per_call = max(1, batch_size // n)  # prompts per generate call: batch_size rows in all
    kwargs = {"max_new_tokens": wl["max_new_tokens"], "do_sample": wl["temperature"] > 0, "stop_strings": list(stop),
              "tokenizer": tokenizer, "pad_token_id": tokenizer.pad_token_id, "num_return_sequences": n}
    if wl["temperature"] > 0:
        kwargs.update(temperature=wl["temperature"], top_p=TOP_P, top_k=0)
    tokenizer.padding_side = "left"
    out = []
    with torch.inference_mode():
        for start in range(0, len(prompts), per_call):
            enc = tokenizer(prompts[start:start + per_call], return_tensors="pt", padding=True)
            ids = model.generate(**enc, **kwargs)
            texts = tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            out += [[truncate_at_stop(t, stop) for t in texts[k * n:(k + 1) * n]] for k in range(len(texts) // n)]
    return out


def lm_eval_hflm(model, tokenizer, prompts, stop, wl, batch_size):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=1024)
    gen_kwargs = {"until": list(stop), "max_gen_toks": wl["max_new_tokens"], "do_sample": wl["temperature"] > 0}
    if wl["temperature"] > 0:
        gen_kwargs.update(temperature=wl["temperature"], top_p=TOP_P)
    requests = [Instance(request_type="generate_until", doc={}, arguments=(p, dict(gen_kwargs)), idx=k)
                for p in prompts for k in range(wl["n"])]
    flat = lm.generate_until(requests, disable_tqdm=True)
    n = wl["n"]
    return [flat[k * n:(k + 1) * n] for k in range(len(prompts))]


TOOLS = {"ours": ours, "plain HF": plain_hf, "lm-eval HFLM": lm_eval_hflm}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("tiny", "large"), default="tiny")
    parser.add_argument("--prompts", type=int, default=188)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--engine", default="hf", help="ours: the eval.engine to run")
    parser.add_argument("--steps", action="store_true", help="row-steps of both engines per n_samples and batch size")
    args = parser.parse_args()

    import torch

    from evaluators.benchmarks import load_benchmark

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    model, tokenizer = load(args.model)
    bench = load_benchmark("toy", split="test", limit=args.prompts)
    prompts, stop = [t.prompt for t in bench.tasks], bench.stop
    if args.steps:
        return row_steps(model, tokenizer, prompts, stop)
    TOOLS["ours"] = lambda *a: ours(*a, engine=args.engine)
    warm = {"n": 2, "temperature": 0.8, "max_new_tokens": 8}
    for run in TOOLS.values():  # first calls pay for allocations and kernel selection: not part of any figure
        with contextlib.redirect_stderr(io.StringIO()):
            run(model, tokenizer, prompts[:4], stop, warm, 4)
    for name in args.workloads:
        wl = WORKLOADS[name]
        samples = len(prompts) * wl["n"]
        times = {(tool, b): [] for tool in TOOLS for b in args.batch_sizes}
        outputs = {}
        for _ in range(args.reps):
            for b in args.batch_sizes:
                for tool, run in TOOLS.items():
                    with contextlib.redirect_stderr(io.StringIO()):
                        t0 = time.perf_counter()
                        outputs[tool, b] = run(model, tokenizer, prompts, stop, wl, b)
                        times[tool, b].append(time.perf_counter() - t0)
        print(f"\n{name}: {len(prompts)} prompts x {wl['n']} samples, T={wl['temperature']}, "
              f"max_new_tokens {wl['max_new_tokens']}, {args.reps} interleaved rounds, 1 thread, median of rounds")
        print(f"  {'tool':<14}{'batch':>6}{'samples/s':>11}{'tokens/s':>10}{'vs lm-eval':>12}")
        for label, pick in (("at batch 16", lambda tool: 16), ("at its best batch", None)):
            if pick and 16 not in args.batch_sizes:
                continue
            rows = {}
            for tool in TOOLS:
                b = pick(tool) if pick else min(args.batch_sizes, key=lambda b: statistics.median(times[tool, b]))
                seconds = statistics.median(times[tool, b])
                tokens = sum(len(tokenizer(c, add_special_tokens=False)["input_ids"]) for cs in outputs[tool, b] for c in cs)
                rows[tool] = (b, samples / seconds, tokens / seconds)
            print(f"  {label}:")
            for tool, (b, sps, tps) in rows.items():
                print(f"  {tool:<14}{b:>6}{sps:>11.1f}{tps:>10.0f}{sps / rows['lm-eval HFLM'][1]:>11.2f}x")
        if wl["temperature"] == 0:
            b = args.batch_sizes[0]
            for tool in TOOLS:
                if tool != "ours":
                    differ = sum(x != y for x, y in zip(outputs["ours", b], outputs[tool, b]))
                    print(f"  greedy completions differing, ours vs {tool}: {differ} of {len(prompts)}")
    return 0


def row_steps(model, tokenizer, prompts, stop) -> int:
    """Useful row-steps as a share of computed ones, and time, per engine, n_samples and batch size."""
    from evaluators.engines import ENGINES

    print(f"{len(prompts)} prompts, T=0.8 (greedy at n=1), 128 new tokens, 1 thread; one run each")
    print(f"  {'engine':<12}{'n':>4}{'batch':>7}{'seconds':>9}{'forwards':>10}{'row-steps':>11}{'useful':>9}")
    for n in (1, 5, 10, 20):
        wl = {"n": n, "temperature": 0.0 if n == 1 else 0.8, "max_new_tokens": 128}
        for b in (8, 16, 32, 64):
            for engine in ("hf_generate", "hf"):
                t0 = time.perf_counter()
                ours(model, tokenizer, prompts, stop, wl, b, engine=engine)
                seconds = time.perf_counter() - t0
                s = ENGINES[engine].stats
                print(f"  {engine:<12}{n:>4}{b:>7}{seconds:>9.2f}{s['forwards']:>10}{s['row_steps']:>11}"
                      f"{s['useful_row_steps'] / s['row_steps']:>9.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
