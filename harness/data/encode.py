"""Tokenize rendered segments into ``input_ids`` and ``labels`` with prompt-loss masking.

Every segment is tokenized on its own and the ids are concatenated, so the prompt's
tokens at training are exactly the tokens the model sees for that prompt at
evaluation. Each answer gets the EOS token appended. Labels are ``-100`` on prompt
tokens (and on assistant turns that are not trained on); answer tokens and their EOS
are supervised.

Truncation policy at ``cutoff_len`` (``data.overlong=truncate``), with P the tokens
before the last answer and A the last answer (+ EOS):

1. P + A <= cutoff: keep everything.
2. Otherwise the answer keeps ``min(A, max(cutoff - P, cutoff // 2))`` tokens (cut on
   the right: a very long answer loses its end and its EOS), and the prompt keeps the
   rest, cut on the left (the text nearest the answer survives; a leading BOS is kept).

So an answer is never dropped whole: at least half the window is answer whenever the
answer is that long. ``data.overlong=drop`` drops over-long examples instead (counted).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.data.templates import Segment

__all__ = ["IGNORE_INDEX", "Encoder", "Encoded"]

IGNORE_INDEX = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool


class Encoder:
    """Tokenizes segments with one tokenizer; batches the tokenizer calls for speed."""

    def __init__(self, tokenizer, *, template: str, cutoff_len: int, train_on_prompt: bool = False,
                 train_on: str = "all"):
        self.tok = tokenizer
        self.cutoff_len = cutoff_len
        self.train_on_prompt = train_on_prompt
        self.train_on = train_on
        if tokenizer.eos_token_id is None:
            from harness.errors import ConfigError

            raise ConfigError("tokenizer.eos_token", None, "expected a tokenizer with an EOS token (appended to every answer)")
        self.eos = tokenizer.eos_token_id
        # A BOS the tokenizer adds by default is added here too (chat templates write their own).
        self.bos = _default_bos(tokenizer) if template != "tokenizer" else None

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tok(texts, add_special_tokens=False)["input_ids"]

    def encode_many(self, rendered: list[list[Segment]]) -> list[Encoded]:
        flat = [text for segs in rendered for text, _ in segs]
        ids = iter(self.token_ids(flat))
        return [self._assemble([(next(ids), is_answer) for _, is_answer in segs]) for segs in rendered]

    def _assemble(self, pieces: list[tuple[list[int], bool]]) -> Encoded:
        answers = [i for i, (_, a) in enumerate(pieces) if a]
        last = answers[-1]
        input_ids: list[int] = [] if self.bos is None else [self.bos]
        labels: list[int] = [] if self.bos is None else [IGNORE_INDEX]
        for i, (ids, is_answer) in enumerate(pieces):
            if is_answer:
                ids = list(ids) if ids[-1:] == [self.eos] else [*ids, self.eos]
                supervised = self.train_on == "all" or i == last or self.train_on_prompt
            else:
                supervised = self.train_on_prompt
            if i == last:
                split = len(input_ids)
            input_ids.extend(ids)
            labels.extend(ids if supervised else [IGNORE_INDEX] * len(ids))
        return self._truncate(input_ids, labels, split)

    def _truncate(self, input_ids: list[int], labels: list[int], split: int) -> Encoded:
        cutoff = self.cutoff_len
        if len(input_ids) <= cutoff:
            return Encoded(input_ids, labels, False)
        prompt_len, answer_len = split, len(input_ids) - split
        keep_answer = min(answer_len, max(cutoff - prompt_len, cutoff // 2))
        keep_prompt = cutoff - keep_answer
        head = 1 if self.bos is not None and keep_prompt > 0 else 0  # keep the BOS
        start = split - (keep_prompt - head)
        ids = input_ids[:head] + input_ids[start: split + keep_answer]
        labs = labels[:head] + labels[start: split + keep_answer]
        return Encoded(ids, labs, True)


def _default_bos(tokenizer) -> int | None:
    bos = tokenizer.bos_token_id
    if bos is None:
        return None
    with_special = tokenizer("a")["input_ids"]
    return bos if with_special[:1] == [bos] else None
