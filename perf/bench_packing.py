"""Training throughput with and without packing on a tiny Llama (CPU).

    python perf/bench_packing.py [--steps 30] [--batch-size 16] [--data toy|mbpp]

``toy`` sequences are short and uniform (little padding to save); ``mbpp`` uses the MBPP
train split (task ids 601-974, problem text -> reference code, cut at 256 tokens), whose
lengths vary widely, as real instruction data does.

Prints real (non-padding) tokens per second for right-padded and padding-free packed
batches, the padding share avoided, and the losses of the first batch both ways.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml

from harness.data import DataConfig, make_collator, prepare_data
from harness.data.testing import tiny_tokenizer

ROOT = Path(__file__).resolve().parents[1]


def model_for(tok):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    spec = yaml.safe_load((ROOT / "conf" / "model" / "tiny.yaml").read_text())["builtin"]
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=spec["hidden_size"], intermediate_size=spec["intermediate_size"],
                      num_hidden_layers=spec["num_hidden_layers"], num_attention_heads=spec["num_attention_heads"],
                      num_key_value_heads=spec["num_key_value_heads"], max_position_embeddings=256,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, use_cache=False)
    return LlamaForCausalLM(cfg)


def run(rows, tok, *, packing: bool, pack_length: int | None, steps: int, batch_size: int) -> dict:
    model = model_for(tok).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    collate = make_collator(tok, packing=packing, pack_length=pack_length)
    batches = [collate(rows[i: i + batch_size]) for i in range(0, batch_size * (steps + 2), batch_size)]
    first_loss = None
    for b in batches[:2]:  # warm-up
        model(**b).loss.backward()
        opt.zero_grad()
    start, tokens = time.perf_counter(), 0
    for b in batches[2:]:
        loss = model(**b).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        first_loss = first_loss if first_loss is not None else loss.item()
    tokens = collate.stats["tokens"] * steps // len(batches)
    seconds = time.perf_counter() - start
    return {"tokens_per_s": round(tokens / seconds), "seconds": round(seconds, 2), "collator": collate.stats}


def mbpp_rows(tok, cutoff: int = 256) -> list[dict]:
    import json as _json

    path = ROOT / "evaluators" / "data" / "mbpp.jsonl"
    rows = []
    for line in path.read_text().splitlines():
        r = _json.loads(line)
        if 601 <= r["task_id"] <= 974:
            prompt = tok(f'"""{r["text"]}"""\n')["input_ids"]
            answer = tok(r["code"].replace("\r\n", "\n"))["input_ids"] + [tok.eos_token_id]
            ids = (prompt + answer)[:cutoff]
            rows.append({"input_ids": ids, "labels": ([-100] * len(prompt) + answer)[:cutoff]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", choices=("toy", "mbpp"), default="toy")
    args = parser.parse_args()
    torch.set_num_threads(2)
    tok = tiny_tokenizer()
    if args.data == "mbpp":
        rows = mbpp_rows(tok)
    else:
        cfg = DataConfig.from_dict(yaml.safe_load((ROOT / "conf" / "data" / "toy.yaml").read_text()))
        rows = prepare_data(cfg, tokenizer=tok, eval_benchmarks=["toy"], cache_dir=None).train
    while len(rows) < args.batch_size * (args.steps + 2):
        rows = rows + rows
    modes = {"padded": (False, None), "packed_rows128": (True, 128), "packed_rows256": (True, 256), "packed_one_row": (True, None)}
    speeds: dict[str, list] = {m: [] for m in modes}
    for _ in range(args.repeats):  # interleaved, median: the machine may be shared
        for name, (packing, length) in modes.items():
            r = run(rows, tok, packing=packing, pack_length=length, steps=args.steps, batch_size=args.batch_size)
            speeds[name].append(r["tokens_per_s"])
    median = {m: sorted(v)[len(v) // 2] for m, v in speeds.items()}
    print(json.dumps({"tokens_per_s_runs": speeds, "median": median}, indent=1))
    base = median["padded"]
    for m, v in median.items():
        print(f"{m:15s} {v:7d} tok/s  x{v / base:.2f}")


if __name__ == "__main__":
    main()
