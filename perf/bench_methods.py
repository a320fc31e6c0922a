"""Cost of every fine-tuning method on the embedded default's architecture, CPU, no sweep machinery.

    python perf/bench_methods.py                    # all methods, Markdown table on stdout
    python perf/bench_methods.py --methods lora dora --steps 10 --json out.json

Each method runs in its own subprocess (so peak memory is that method's alone): a randomly initialised Llama
shaped like conf/model/tiny.yaml, the method's conf/method/<name>.yaml, `--steps` training steps on random tokens
(batch 16 x 128), then greedy generation with the model `prepare_for_generation` returns. Reported: trainable
parameters (and % of total), peak resident memory of the process, training tokens/s, generation tokens/s, and
whether generation ran on a merged plain model. Quality (toy pass@1) needs the trained tiny base and the sandbox:
that is `python -m harness.sweep +sweep=method_compare`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHOD_ORDER = ["full", "lora", "qlora", "dora", "rslora", "loraplus", "adalora", "ia3", "prefix", "prompt",
                "ptuning", "bitfit", "freeze"]  # fmt: skip


def _measure(name: str, steps: int, batch: int, seq: int) -> dict:
    """Runs in the child process."""
    import resource

    import torch
    from omegaconf import OmegaConf
    from transformers import LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(ROOT))
    from harness.methods import (
        MethodUnavailable,
        apply_method,
        build_optimizer,
        method_config_from_dict,
        model_load_kwargs,
        prepare_for_generation,
        trainer_callbacks,  # noqa: F401  (documented hook; the loop below calls on_optimizer_step directly)
    )

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    import peft  # noqa: F401  (imported before the baseline so every method pays the same import cost)

    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        pass
    baseline_mb = _rss_mb()  # torch, transformers, peft (and bitsandbytes) imported, no model yet
    recipe = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/model/tiny.yaml"))["builtin"]
    method = OmegaConf.to_container(OmegaConf.load(ROOT / f"conf/method/{name}.yaml"))
    if name == "bitfit":
        method["include_norm_weights"] = True  # the tiny Llama has no biases
    cfg = method_config_from_dict(method)
    config = LlamaConfig(**{k: recipe[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                                      "num_attention_heads", "num_key_value_heads", "max_position_embeddings")},
                         tie_word_embeddings=True)  # fmt: skip
    torch.manual_seed(0)
    try:
        kwargs = model_load_kwargs(cfg, device="cpu")
    except MethodUnavailable as exc:
        return {"method": name, "status": "failed", "reason": str(exc)}
    model = LlamaForCausalLM(config)
    if kwargs:  # quantized load goes through from_pretrained
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp)
            model = LlamaForCausalLM.from_pretrained(tmp, **kwargs)
    applied = apply_method(model, cfg, total_steps=steps)
    lr = cfg.default_learning_rate or 1e-3
    opt = build_optimizer(applied.model, cfg, learning_rate=lr) or torch.optim.AdamW(
        [p for p in applied.model.parameters() if p.requires_grad], lr=lr
    )
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, config.vocab_size, (batch, seq), generator=gen)
    data = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    applied.model.train()
    losses, started = [], None
    for step in range(steps + 1):
        if step == 1:
            started = time.perf_counter()  # step 0 is warm-up
        loss = applied.model(**data).loss
        loss.backward()
        opt.step()
        if applied.on_optimizer_step is not None:
            applied.on_optimizer_step(step)
        opt.zero_grad()
        losses.append(loss.item())
    train_tps = steps * batch * seq / (time.perf_counter() - started)

    gen_model = prepare_for_generation(applied.model, cfg)
    prompt = ids[:8, :32]
    new_tokens = 32
    with torch.no_grad():
        gen_model.generate(input_ids=prompt[:, :8], attention_mask=torch.ones_like(prompt[:, :8]), max_new_tokens=2,
                           do_sample=False, pad_token_id=0)  # warm-up  # fmt: skip
        t0 = time.perf_counter()
        gen_model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens,
                           min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)  # fmt: skip
        gen_tps = prompt.shape[0] * new_tokens / (time.perf_counter() - t0)
    return {
        "method": name,
        "status": "complete",
        "trainable_params": applied.trainable_params,
        "total_params": applied.total_params,
        "trainable_pct": round(applied.trainable_percent, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_over_baseline_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - baseline_mb, 1),
        "train_tokens_per_s": round(train_tps, 1),
        "generate_tokens_per_s": round(gen_tps, 1),
        "merged_for_generation": not hasattr(gen_model, "peft_config"),
        "loss_first_last": [round(losses[0], 4), round(losses[-1], 4)],
    }


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=METHOD_ORDER)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_measure(args.child, args.steps, args.batch, args.seq)))
        return 0
    rows = []
    for name in args.methods:
        cmd = [sys.executable, __file__, "--child", name, "--steps", str(args.steps), "--batch", str(args.batch),
               "--seq", str(args.seq)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            rows.append({"method": name, "status": "failed", "reason": proc.stderr.strip().splitlines()[-1]})
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{name}: {rows[-1]}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print("| method | status | trainable params | trainable % | peak RSS MB (over imports) | train tok/s | generate tok/s | merged |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if r["status"] != "complete":
            print(f"| {r['method']} | failed: {r['reason']} | | | | | | |")
            continue
        print(f"| {r['method']} | complete | {r['trainable_params']:,} | {r['trainable_pct']:.3f} "
              f"| {r['peak_rss_mb']:.0f} ({r['peak_over_baseline_mb']:.0f}) "
              f"| {r['train_tokens_per_s']:.0f} | {r['generate_tokens_per_s']:.0f} | {'yes' if r['merged_for_generation'] else 'no'} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
