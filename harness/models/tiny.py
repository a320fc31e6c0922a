"""The embedded default model: a tiny Llama with a byte-level BPE tokenizer, built here.

Why pre-train: LoRA on a randomly initialised base cannot learn the toy tasks in a few
CPU minutes (the adapter would have to learn Python syntax and the prompt format from
scratch). So the base is pre-trained (all weights) on the train split of half of the toy
families (``toy.PRETRAIN_FAMILIES``): it knows the format and those operations, and
fine-tuning has the other half to learn. Test-split instances are never seen here.

The build is deterministic, cached by a hash of its recipe, and saved with
``save_pretrained`` so it is loaded through exactly the code path of a hub model.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["RECIPE_VERSION", "build_tiny", "tiny_path"]

RECIPE_VERSION = 2  # bump when the build below changes what it produces


def _recipe_hash(recipe: dict[str, Any]) -> str:
    from evaluators.benchmarks import toy

    corpus = json.dumps(toy.records("train", toy.PRETRAIN_FAMILIES), sort_keys=True)
    payload = json.dumps({"version": RECIPE_VERSION, "recipe": recipe}, sort_keys=True) + corpus
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def tiny_path(recipe: dict[str, Any], cache_dir: Path) -> tuple[Path, str]:
    digest = _recipe_hash(recipe)
    return cache_dir / "models" / f"tiny-llama-{digest}", digest


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from evaluators.benchmarks import toy

    # Tokenizer vocabulary from train + validation text only (never the test split).
    corpus = [r["prompt"] + r["completion"] for split in ("train", "validation") for r in toy.records(split)]
    corpus += ["def check(candidate):\n    assert candidate(x) == y\n", "import os\nimport sys\nclass A:\n    pass\n"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", model_max_length=4096
    )


def _pretrain(model, tokenizer, *, steps: int, batch_size: int, learning_rate: float, seed: int = 0) -> list[float]:
    import torch
    from tqdm import tqdm

    from evaluators.benchmarks import toy

    # Prompt and completion are tokenized separately and concatenated, exactly as the data
    # stage does for fine-tuning and as generation sees a prompt: no merge across the boundary.
    encoded = [
        tokenizer(r["prompt"])["input_ids"] + tokenizer(r["completion"])["input_ids"] + [tokenizer.eos_token_id]
        for r in toy.records("train", toy.PRETRAIN_FAMILIES)
    ]
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=learning_rate, total_steps=steps, pct_start=0.1)
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc="pre-training tiny base", unit="step", leave=False, disable=not sys.stderr.isatty()):
        idx = torch.randint(len(encoded), (batch_size,), generator=gen).tolist()
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((batch_size, width), tokenizer.pad_token_id)
        labels = torch.full((batch_size, width), -100)
        for row, i in enumerate(idx):
            seq = torch.tensor(encoded[i])
            ids[row, : len(seq)] = seq
            labels[row, : len(seq)] = seq
        loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return losses


def build_tiny(recipe: dict[str, Any], cache_dir: Path) -> tuple[Path, str]:
    """Return (directory, hash) of the tiny model for ``recipe``, building it once (file-locked)."""
    path, digest = tiny_path(recipe, cache_dir)
    if (path / "build.json").exists():
        return path, digest
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be building the same model
        if (path / "build.json").exists():
            return path, digest
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        started = time.time()
        print(f"building the tiny base model once (about a minute on 2 cores): {path}", flush=True)
        torch.manual_seed(0)
        tokenizer = _train_tokenizer(int(recipe["vocab_size"]))
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=int(recipe["hidden_size"]),
            intermediate_size=int(recipe["intermediate_size"]),
            num_hidden_layers=int(recipe["num_hidden_layers"]),
            num_attention_heads=int(recipe["num_attention_heads"]),
            num_key_value_heads=int(recipe["num_key_value_heads"]),
            max_position_embeddings=int(recipe["max_position_embeddings"]),
            tie_word_embeddings=True,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = LlamaForCausalLM(config)
        losses = _pretrain(
            model,
            tokenizer,
            steps=int(recipe["pretrain_steps"]),
            batch_size=int(recipe["pretrain_batch_size"]),
            learning_rate=float(recipe["pretrain_learning_rate"]),
        )
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        build = {
            "recipe": recipe,
            "recipe_version": RECIPE_VERSION,
            "hash": digest,
            "parameters": sum(p.numel() for p in model.parameters()),
            "pretrain_loss_first": losses[0] if losses else None,
            "pretrain_loss_last": sum(losses[-20:]) / max(1, len(losses[-20:])),
            "build_seconds": round(time.time() - started, 1),
        }
        (tmp / "build.json").write_text(json.dumps(build, indent=2))
        # A folder, not a file (so not common.files): it is built privately beside its final name and
        # renamed into place whole. Readers trust it once build.json is there; the lock keeps a second
        # builder out while a stale, incomplete folder is removed.
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
        print(
            f"built tiny base model {path} ({build['parameters']:,} params, "
            f"pre-train loss {build['pretrain_loss_first']:.2f} -> {build['pretrain_loss_last']:.3f}, {build['build_seconds']} s)",
            flush=True,
        )
    return path, digest
