"""Gradient checkpointing: the same loss curve, less activation memory, more time per step.

    python perf/bench_grad_checkpointing.py [--layers 8] [--hidden 512] [--seq 512] [--batch 8] [--steps 4]

Builds a Llama-style model with random weights (vocabulary 1024, so the logits do not drown the layers'
activations) and trains it for ``--steps`` AdamW steps on fixed random batches twice from the same weights:
checkpointing off, then on, turned on by ``harness.train.enable_gradient_checkpointing``, the call trials make.
Prints the loss at every step both ways and their largest difference, the time per step both ways (median,
no profiler running; wall and process CPU time), and the peak activation memory of one forward+backward both ways, with the ratio.

How memory is measured (:func:`peak_activation_memory`): ``torch.profiler`` with ``profile_memory=True``
records every allocation and free of torch's CPU allocator with the tensor it belongs to, and its memory
timeline (``export_memory_timeline``) labels each tensor by its role in the autograd graph: parameter,
gradient, activation, temporary, ... One forward+backward is profiled after a warm-up one, with the gradients
kept (``zero_grad(set_to_none=False)``), so what it allocates is what the forward and backward need. Two peaks
over that timeline are reported:

- ``activation``: the largest total of tensors labelled activation (kept for backward: with checkpointing the
  layers' inputs, plus the activations of the layer being recomputed);
- ``above start``: the largest total of all tensors beyond those live before the forward (activations,
  temporaries, autograd buffers; parameters and gradients are already there), the CPU counterpart of
  ``torch.cuda.max_memory_allocated`` minus the model.

Why not ``saved_tensors_hooks``: non-reentrant checkpointing installs its own saved-tensor hooks inside each
checkpointed layer, so an outer hook sees neither what is saved there nor the layer inputs the checkpoint keeps
for the recomputation: it would report a flattering figure for the checkpointed run. Why not RSS: the
allocator keeps freed pages, and sampling misses short peaks. The profiler sees every allocation in order,
including those of the recomputation during backward.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import tempfile
import time
import warnings

import torch

from harness.train import disable_gradient_checkpointing, enable_gradient_checkpointing

__all__ = ["build_model", "peak_activation_memory", "train_steps"]

_MIB = 2**20


def build_model(*, layers: int, hidden: int, heads: int, vocab: int, seq: int, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=int(hidden * 8 / 3) // 8 * 8,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=seq, use_cache=False)
    model = LlamaForCausalLM(config)
    model.train()
    return model


def batches(*, n: int, batch: int, seq: int, vocab: int, seed: int = 1) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(0, vocab, (batch, seq), generator=g)
        out.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids})
    return out


def train_steps(model, data: list[dict], *, lr: float = 1e-3) -> tuple[list[float], list[float], list[float]]:
    """(loss, wall seconds, process CPU seconds) per plain AdamW step on ``data``, one batch a step. CPU seconds
    count this process's threads only, so other load on a shared machine inflates them far less than wall time."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses, seconds, cpu_seconds = [], [], []
    for batch in data:
        started, cpu_started = time.perf_counter(), time.process_time()
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
        losses.append(loss.item())
    return losses, seconds, cpu_seconds


def peak_activation_memory(model, batch: dict) -> dict[str, float]:
    """Peaks (MiB) of one profiled forward+backward: ``activation`` and ``above_start`` (see the module docstring)."""
    from torch.profiler import ProfilerActivity, profile

    model(**batch).loss.backward()  # warm-up: gradients exist, lazy initialisations are done
    model.zero_grad(set_to_none=False)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        model(**batch).loss.backward()
    model.zero_grad(set_to_none=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "timeline.json")
        with warnings.catch_warnings():  # deprecated in favour of a CUDA-only API; the CPU timeline still works
            warnings.simplefilter("ignore")
            prof.export_memory_timeline(path, device="cpu")
        with open(path) as f:
            _, sizes = json.load(f)
    # sizes[t] = [unused, then bytes per category in torch.profiler._memory_profiler._CATEGORY_TO_INDEX order:
    # PARAMETER, OPTIMIZER_STATE, INPUT, TEMPORARY, ACTIVATION, GRADIENT, AUTOGRAD_DETAIL, unknown]
    activation = max(row[5] for row in sizes)
    totals = [sum(row) for row in sizes]
    return {"activation_mib": activation / _MIB, "above_start_mib": (max(totals) - totals[0]) / _MIB}


def compare(*, layers: int, hidden: int, heads: int, vocab: int, seq: int, batch: int, steps: int) -> dict:
    model = build_model(layers=layers, hidden=hidden, heads=heads, vocab=vocab, seq=seq)
    state = copy.deepcopy(model.state_dict())
    data = batches(n=steps, batch=batch, seq=seq, vocab=vocab)
    out: dict = {"params": sum(p.numel() for p in model.parameters())}
    for name, checkpointing in (("off", False), ("on", True)):
        model.load_state_dict(state)
        if checkpointing:
            enable_gradient_checkpointing(model)
        memory = peak_activation_memory(model, data[0])
        losses, seconds, cpu_seconds = train_steps(model, data)
        if checkpointing:
            disable_gradient_checkpointing(model)
        out[name] = {"losses": losses, "seconds_per_step": statistics.median(seconds),
                     "cpu_seconds_per_step": statistics.median(cpu_seconds), **memory}
    out["max_abs_loss_diff"] = max(abs(a - b) for a, b in zip(out["off"]["losses"], out["on"]["losses"]))
    out["activation_ratio"] = out["off"]["activation_mib"] / out["on"]["activation_mib"]
    out["above_start_ratio"] = out["off"]["above_start_mib"] / out["on"]["above_start_mib"]
    out["time_ratio"] = out["on"]["seconds_per_step"] / out["off"]["seconds_per_step"]
    out["cpu_time_ratio"] = out["on"]["cpu_seconds_per_step"] / out["off"]["cpu_seconds_per_step"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    r = compare(layers=args.layers, hidden=args.hidden, heads=args.heads, vocab=args.vocab, seq=args.seq,
                batch=args.batch, steps=args.steps)
    print(f"Llama-style, random weights: {args.layers} layers, hidden {args.hidden}, {args.heads} heads, vocab {args.vocab}, "
          f"{r['params'] / 1e6:.1f}M params; batch {args.batch} x seq {args.seq}; {args.steps} AdamW steps; "
          f"torch {torch.__version__}, {args.threads} threads")
    print(f"{'step':>4}  {'loss (off)':>12}  {'loss (on)':>12}")
    for i, (a, b) in enumerate(zip(r["off"]["losses"], r["on"]["losses"]), 1):
        print(f"{i:>4}  {a:>12.6f}  {b:>12.6f}")
    print(f"max |loss difference|: {r['max_abs_loss_diff']:.2e}")
    print(f"{'checkpointing':<14} {'activation MiB':>15} {'above-start MiB':>16} {'s/step':>8} {'CPU s/step':>11}")
    for name in ("off", "on"):
        x = r[name]
        print(f"{name:<14} {x['activation_mib']:>15.1f} {x['above_start_mib']:>16.1f} {x['seconds_per_step']:>8.2f}"
              f" {x['cpu_seconds_per_step']:>11.2f}")
    print(f"off/on: activation {r['activation_ratio']:.2f}x, above start {r['above_start_ratio']:.2f}x less memory; "
          f"on/off per step: {r['time_ratio']:.2f}x wall, {r['cpu_time_ratio']:.2f}x CPU time")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)


if __name__ == "__main__":
    main()
