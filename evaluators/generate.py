"""Batched generation of completions: left-padded, stop sequences, seeded sampling.

Prompts are tokenized alone (no special tokens added beyond what the tokenizer's
default adds), exactly as the training stage tokenizes prompts, so what the model sees
at evaluation matches what it was trained on. Each prompt is repeated ``n_samples``
times; sampling is seeded once per call, so a run is reproducible on the same device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["GenerationSettings", "generate", "truncate_at_stop"]


@dataclass(frozen=True)
class GenerationSettings:
    n_samples: int = 1
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 128
    batch_size: int = 16
    seed: int = 0

    def as_record(self) -> dict:
        return {**self.__dict__, "decoding": "greedy" if self.temperature == 0 else "sampling"}


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the earliest stop sequence (the stop sequence itself is dropped)."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


class _StopOnSequences:
    """Stops each row once its new text contains a stop sequence (or EOS).

    Only the last ``window`` new tokens of each row are decoded at each step, enough to hold
    the longest stop sequence (every token decodes to at least one character) plus a margin,
    so a stop is seen at the very step it is completed, as a check of the whole text would see
    it, while the cost per step stays flat instead of growing with the generated length. A row
    found done stays done.
    """

    MARGIN = 8  # tokens before the longest stop sequence: a tail never starts inside it

    def __init__(self, tokenizer, prompt_width: int, stop: Sequence[str]):
        self.tokenizer, self.prompt_width, self.stop = tokenizer, prompt_width, tuple(stop)
        self.eos = tokenizer.eos_token or "\x00never\x00"
        self.window = max((len(s) for s in (*self.stop, self.eos)), default=1) + self.MARGIN
        self.done = None

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        if self.done is None:
            self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        tail = input_ids[:, max(self.prompt_width, input_ids.shape[1] - self.window):]
        rows = (~self.done).nonzero().flatten().tolist()
        for row, text in zip(rows, self.tokenizer.batch_decode(tail[rows], skip_special_tokens=False)):
            if self.eos in text or any(s in text for s in self.stop):
                self.done[row] = True
        return self.done.clone()


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    settings: GenerationSettings,
    stop: Sequence[str],
    progress: bool = False,
    desc: str = "generating",
    add_special_tokens: bool = True,
) -> list[list[str]]:
    """Return ``n_samples`` completions per prompt (stop sequences and EOS cut off).

    ``add_special_tokens=False`` for prompts already rendered by a chat template that writes
    its own special tokens (they must not be added twice).
    """
    import torch
    from tqdm import tqdm
    from transformers import StoppingCriteriaList

    device = next(model.parameters()).device
    # Length-aware batches: rows of similar prompt length share a batch, so little padding is computed
    # (and fewer rows wait on a much longer one). The sort is stable and results go back by index,
    # so each prompt's samples come back in input order.
    lengths = [len(ids) for ids in tokenizer(list(prompts), add_special_tokens=add_special_tokens)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    expanded = [(i, prompts[i]) for i in order for _ in range(settings.n_samples)]
    out: list[list[str]] = [[] for _ in prompts]
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    torch.manual_seed(settings.seed)
    sampling = settings.temperature > 0
    gen_kwargs = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": sampling,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if sampling:
        gen_kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=0)
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(expanded), desc=desc, unit="sample", disable=not progress, leave=False)
    try:
        for start in range(0, len(expanded), settings.batch_size):
            chunk = expanded[start : start + settings.batch_size]
            enc = tokenizer(
                [p for _, p in chunk], return_tensors="pt", padding=True, add_special_tokens=add_special_tokens
            ).to(device)
            width = enc["input_ids"].shape[1]
            stopper = _StopOnSequences(tokenizer, width, stop)
            with torch.inference_mode():
                ids = model.generate(**enc, stopping_criteria=StoppingCriteriaList([stopper]), **gen_kwargs)
            texts = tokenizer.batch_decode(ids[:, width:], skip_special_tokens=True)
            for (i, _), text in zip(chunk, texts):
                out[i].append(truncate_at_stop(text, stop))
            bar.update(len(chunk))
    finally:
        bar.close()
        tokenizer.padding_side = old_side
        model.train(was_training)
    return out
