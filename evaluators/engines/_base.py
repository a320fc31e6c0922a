"""What every generation engine shares: its interface, the settings, the stop rule and the
per-(task, sample) random streams that make a sampled completion independent of scheduling.

An engine turns prompts into ``n_samples`` completions each, in input order. Whatever it does
inside (batching, refilling, sharing a prompt's prefill), two things hold for every engine:

- **greedy** decoding picks ``argmax`` of the model's logits at each step, with nothing else
  applied (no repetition penalty or top-k from the model's own generation config), so its
  tokens are what ``model.generate`` gives the prompt alone, unpadded;
- **sampling** draws row (task, sample) from its own stream: ``max_new_tokens`` uniforms seeded
  by (seed, task key, sample index), one used per step by inverse-CDF sampling over the
  temperature-scaled, top-p-filtered distribution. No row reads another's draws, so a completion
  does not depend on batch size, order or the other prompts (only on the logits, which batching
  can move by a float rounding: a near-tie is the one way two runs may differ).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Engine", "GenerationSettings", "SettingsError", "StopCheck", "choose_tokens", "row_uniforms", "truncate_at_stop"]


class SettingsError(ValueError):
    """A generation setting is out of range. ``key`` is the field's name (harness reports it as
    ``eval.generation.<key>``), ``value`` the bad value, ``expected`` what is allowed."""

    def __init__(self, key: str, value: object, expected: str):
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"{key}={value!r}: {expected}")


@dataclass(frozen=True)
class GenerationSettings:
    """How completions are generated: the ``eval.generation`` config group, plus the trial's ``seed``
    and ``eval.engine`` (set by harness, not keys of ``eval.generation``). Recorded as is
    (:meth:`as_record`) with every evaluation, and checked here, so no engine sees a bad value."""

    n_samples: int = 1
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 128
    batch_size: int = 16
    seed: int = 0
    engine: str = "hf"

    def __post_init__(self) -> None:
        for key in ("n_samples", "max_new_tokens", "batch_size"):
            if getattr(self, key) <= 0:
                raise SettingsError(key, getattr(self, key), "must be > 0")
        if self.temperature < 0:
            raise SettingsError("temperature", self.temperature, "must be >= 0")
        if not 0 < self.top_p <= 1:
            raise SettingsError("top_p", self.top_p, "must be in (0, 1]")
        if self.temperature == 0 and self.n_samples > 1:
            raise SettingsError("n_samples", self.n_samples,
                                "greedy decoding (temperature 0) gives 1 distinct sample; set n_samples=1 or temperature > 0")

    def as_record(self) -> dict:
        return {**self.__dict__, "decoding": "greedy" if self.temperature == 0 else "sampling"}


class Engine(Protocol):
    name: str
    stats: dict[str, int]  # the last call's work: forwards, row_steps (rows computed), useful_row_steps (rows not yet done)

    def unsupported(self, model) -> str | None:
        """Why this engine cannot run ``model`` (None: it can)."""

    def generate_ids(self, model, tokenizer, prompt_ids: Sequence[Sequence[int]], *, keys: Sequence[str],
                     settings: GenerationSettings, stop: Sequence[str], progress) -> list[list[list[int]]]:
        """New token ids per prompt and sample, in input order, each ending at its stop (included)."""


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the earliest stop sequence (the stop sequence itself is dropped)."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


class StopCheck:
    """Is a row done: its last token is EOS, or its new text contains a stop sequence?

    Only the last ``window`` new tokens are decoded, enough to hold the longest stop sequence
    (every token decodes to at least one character) plus a margin, so a stop is seen at the very
    step it is completed, as a check of the whole text would see it, at a cost per step that does
    not grow with the generated length.
    """

    MARGIN = 8  # tokens before the longest stop sequence: a tail never starts inside it

    def __init__(self, tokenizer, stop: Sequence[str]):
        self.tokenizer, self.stop = tokenizer, tuple(stop)
        self.eos_text = tokenizer.eos_token or "\x00never\x00"
        self.eos_id = tokenizer.eos_token_id
        self.window = max((len(s) for s in (*self.stop, self.eos_text)), default=1) + self.MARGIN
        # a fast tokenizer's own decoder, when the wrapper would only add a conversion of the ids (and no
        # clean-up of spaces, which could move a stop sequence): about half the check's cost per step
        backend: Any = getattr(tokenizer, "backend_tokenizer", None)
        plain = backend is not None and not getattr(tokenizer, "clean_up_tokenization_spaces", True)
        self._decode = (lambda rows: backend.decode_batch(rows, skip_special_tokens=False)) if plain else (
            lambda rows: tokenizer.batch_decode(rows, skip_special_tokens=False))

    def hit(self, text: str) -> bool:
        return self.eos_text in text or any(s in text for s in self.stop)

    def done(self, rows: Sequence[Sequence[int]]) -> list[bool]:
        """For each row of new token ids: is it done?"""
        tails = self._decode([list(r[-self.window:]) for r in rows])
        return [bool(r) and (r[-1] == self.eos_id or self.hit(t)) for r, t in zip(rows, tails)]


def row_uniforms(seed: int, key: str, sample: int, n: int):
    """The ``n`` uniforms in [0, 1) that row (key, sample) draws its tokens with."""
    import torch

    digest = hashlib.sha256(f"{seed}\x00{key}\x00{sample}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    return torch.rand(n, generator=generator, dtype=torch.float64)


def choose_tokens(logits, uniforms, *, temperature: float, top_p: float):
    """Next token per row: argmax when greedy, else inverse-CDF sampling with one uniform per row.

    Top-p keeps the most probable tokens whose mass before them is under ``top_p`` (at least
    one); sampling then picks the first token whose cumulative kept mass exceeds ``u`` times
    the kept total.
    """
    import torch

    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    order = None
    if top_p < 1:
        probs, order = probs.sort(dim=-1, descending=True)
        probs = probs * ((probs.cumsum(-1) - probs) < top_p)
    cumulative = probs.double().cumsum(-1)
    target = uniforms.to(cumulative.device)[:, None] * cumulative[:, -1:]
    picked = torch.searchsorted(cumulative, target, right=True).clamp(max=probs.shape[-1] - 1)
    return (picked if order is None else order.gather(-1, picked)).squeeze(-1)
