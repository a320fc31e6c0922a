"""Batch collators for the HF Trainer: right padding, or padding-free packing.

With ``packing=True`` the batch's examples are concatenated into one row with
``position_ids`` restarting at 0 for every example and no attention mask
(transformers' ``DataCollatorWithFlattening``). Llama-style models in transformers 5
detect the restarts in ``position_ids`` and build a block-diagonal causal mask
(``masking_utils.find_packed_sequence_indices``; FlashAttention uses ``cu_seq_lens``),
so neither attention nor positions leak across example boundaries. The first label of
every example is -100, so no example is trained to predict the next one's first token.

Caveat, checked in transformers 5.2x: the packed-sequence detection is skipped whenever a
KV cache exists, and Llama creates one whenever ``use_cache`` is true, also in training.
The packing collator therefore puts ``use_cache=False`` into every batch (the model
receives it as a keyword argument); without it examples attend to each other.

Both collators count real and padded tokens, so the padding avoided is measured, not
estimated: ``collator.stats``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.data.encode import IGNORE_INDEX

__all__ = ["PaddingCollator", "PackingCollator", "make_collator", "padding_waste", "supports_packing"]


@dataclass
class PaddingCollator:
    """Right-pads ``input_ids`` with the pad token, ``labels`` with -100; adds ``attention_mask``."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    stats: dict = field(default_factory=lambda: {"batches": 0, "tokens": 0, "padded_tokens": 0})

    def __call__(self, features: list[dict]) -> dict:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            width = (width + m - 1) // m * m
        ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            ids[row, :n] = torch.as_tensor(f["input_ids"], dtype=torch.long)
            labels[row, :n] = torch.as_tensor(f["labels"], dtype=torch.long)
            mask[row, :n] = 1
        real = int(mask.sum())
        self.stats["batches"] += 1
        self.stats["tokens"] += real
        self.stats["padded_tokens"] += ids.numel() - real
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class PackingCollator:
    """Padding-free batches: examples concatenated with restarting ``position_ids``, no attention mask.

    ``pack_length=None``: the whole batch becomes one row (transformers'
    ``DataCollatorWithFlattening``), best with FlashAttention's variable-length kernels.
    ``pack_length=N``: examples are packed first-fit-decreasing into rows of at most N
    tokens (a longer example gets a row of its own); rows are right-padded to the widest,
    the padding forming its own position run with labels -100. With sdpa/eager the
    attention cost grows with the square of the row length, so on CPU bounded rows are
    what makes packing pay (docs/data.md has the measurements).
    """

    def __init__(self, *, pad_token_id: int, pack_length: int | None = None, return_flash_attn_kwargs: bool = False):
        from transformers import DataCollatorWithFlattening

        self.pad_token_id, self.pack_length = pad_token_id, pack_length
        self._flatten = DataCollatorWithFlattening(
            return_position_ids=True, separator_id=IGNORE_INDEX, return_flash_attn_kwargs=return_flash_attn_kwargs
        )
        self.stats = {"batches": 0, "tokens": 0, "padded_tokens": 0, "padding_avoided": 0, "rows": 0}

    def __call__(self, features: list[dict]) -> dict:
        lengths = [len(f["input_ids"]) for f in features]
        self.stats["batches"] += 1
        self.stats["tokens"] += sum(lengths)
        unpacked_padding = max(lengths) * len(lengths) - sum(lengths)
        features = [{"input_ids": list(f["input_ids"]), "labels": list(f["labels"])} for f in features]
        if self.pack_length is None:
            batch = self._flatten(features, return_tensors="pt")
            self.stats["rows"] += 1
            self.stats["padding_avoided"] += unpacked_padding
        else:
            batch = self._rows(features)
            padded = batch["input_ids"].numel() - sum(lengths)
            self.stats["rows"] += batch["input_ids"].shape[0]
            self.stats["padded_tokens"] += padded
            self.stats["padding_avoided"] += unpacked_padding - padded
        batch["use_cache"] = False  # see the module docstring: a cache disables the packed mask
        return batch

    def _rows(self, features: list[dict]) -> dict:
        import torch

        bins: list[list] = []  # [used, [features]]
        for f in sorted(features, key=lambda f: -len(f["input_ids"])):
            n = len(f["input_ids"])
            for b in bins:
                if b[0] + n <= self.pack_length:
                    b[0] += n
                    b[1].append(f)
                    break
            else:
                bins.append([n, [f]])
        width = max(b[0] for b in bins)
        ids = torch.full((len(bins), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(bins), width), IGNORE_INDEX, dtype=torch.long)
        positions = torch.zeros((len(bins), width), dtype=torch.long)
        for row, (_used, group) in enumerate(bins):
            at = 0
            for f in group:
                n = len(f["input_ids"])
                ids[row, at: at + n] = torch.as_tensor(f["input_ids"])
                labels[row, at + 1: at + n] = torch.as_tensor(f["labels"][1:])  # first label: never across examples
                positions[row, at: at + n] = torch.arange(n)
                at += n
            positions[row, at:] = torch.arange(width - at)
        return {"input_ids": ids, "labels": labels, "position_ids": positions}


def make_collator(tokenizer, *, packing: bool = False, pack_length: int | None = None,
                  pad_to_multiple_of: int | None = None):
    """The collator for ``data.packing`` (and ``data.pack_length``); padding uses the pad token (EOS if none)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if packing:
        return PackingCollator(pad_token_id=pad, pack_length=pack_length)
    return PaddingCollator(pad_token_id=pad, pad_to_multiple_of=pad_to_multiple_of)


def supports_packing(model) -> bool:
    """True when the model builds its attention mask from packed ``position_ids``.

    transformers 5 does this for every attention implementation registered with its
    mask functions (eager, sdpa, flex, flash); custom kernels outside that registry get
    no mask and would attend across examples.
    """
    try:
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    except ImportError:
        return False
    impl = getattr(model.config, "_attn_implementation", None)
    return impl in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping or (impl or "").startswith("flash_attention")


def padding_waste(lengths: list[int], batch_size: int) -> dict:
    """Padding a right-padded loader would add over ``lengths`` taken in order, ``batch_size`` at a time."""
    total = sum(lengths)
    padded = 0
    for i in range(0, len(lengths), batch_size):
        chunk = lengths[i: i + batch_size]
        padded += max(chunk) * len(chunk) - sum(chunk)
    return {
        "batch_size": batch_size,
        "tokens": total,
        "padding_tokens": padded,
        "padding_fraction": round(padded / (total + padded), 4) if total else 0.0,
    }
