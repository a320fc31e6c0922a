"""The ``hf_generate`` engine: batches through ``model.generate``, for any model it can drive.

Prompts are sorted by token length (stable) and cut into left-padded batches; every row of a
batch steps until the last one stops. The ``hf`` engine is faster and gives the same tokens; this
one is its fallback for models whose forward it cannot drive step by step (prompt-learning PEFT
methods, encoder-decoders, sliding-window caches). Sampling draws each row from its own stream
(engines/_base.py) through a logits processor that keeps only the chosen token, so ``generate``
itself runs greedy and consumes no global random state.
"""

from __future__ import annotations

from collections.abc import Sequence

from evaluators.engines._base import GenerationSettings, StopCheck, choose_tokens, row_uniforms

__all__ = ["HFGenerateEngine"]


class _Stopping:
    """A stopping criterion over a left-padded batch whose prompts end at column ``width``."""

    def __init__(self, check: StopCheck, width: int):
        self.check, self.width, self.done = check, width, None
        self.lengths: dict[int, int] = {}  # row -> new tokens when it stopped (generate pads it after)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        if self.done is None:
            self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        rows = (~self.done).nonzero().flatten().tolist()
        new = input_ids[:, self.width:].tolist()
        for row, done in zip(rows, self.check.done([new[r] for r in rows])):
            if done:
                self.done[row] = True
                self.lengths[row] = input_ids.shape[1] - self.width
        return self.done.clone()


class _RowSampler:
    """Samples each row's next token from its own uniforms; every other token gets -inf."""

    def __init__(self, uniforms, width: int, settings: GenerationSettings):
        self.uniforms, self.width, self.settings = uniforms, width, settings

    def __call__(self, input_ids, scores):
        import torch

        step = input_ids.shape[1] - self.width
        chosen = choose_tokens(scores, self.uniforms[:, step], temperature=self.settings.temperature, top_p=self.settings.top_p)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, chosen[:, None], 0.0)
        return out


class HFGenerateEngine:
    name = "hf_generate"

    def __init__(self) -> None:
        self.stats: dict[str, int] = {}  # the last call's batches and row-steps (perf/bench_engines.py)

    def unsupported(self, model) -> str | None:
        return None if hasattr(model, "generate") else "the model has no generate()"

    def generate_ids(self, model, tokenizer, prompt_ids: Sequence[Sequence[int]], *, keys: Sequence[str],
                     settings: GenerationSettings, stop: Sequence[str], progress) -> list[list[list[int]]]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        device = next(model.parameters()).device
        order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))
        rows = [(i, j) for i in order for j in range(settings.n_samples)]
        out: list[list[list[int]]] = [[[] for _ in range(settings.n_samples)] for _ in prompt_ids]
        check = StopCheck(tokenizer, stop)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        config = GenerationConfig(max_new_tokens=settings.max_new_tokens, do_sample=False, pad_token_id=pad,
                                  eos_token_id=tokenizer.eos_token_id)
        self.stats = stats = {"forwards": 0, "row_steps": 0, "useful_row_steps": 0}
        for start in range(0, len(rows), settings.batch_size):
            chunk = rows[start:start + settings.batch_size]
            width = max(len(prompt_ids[i]) for i, _ in chunk)
            ids = torch.tensor([[pad] * (width - len(prompt_ids[i])) + list(prompt_ids[i]) for i, _ in chunk], device=device)
            mask = torch.tensor([[0] * (width - len(prompt_ids[i])) + [1] * len(prompt_ids[i]) for i, _ in chunk], device=device)
            processors = LogitsProcessorList()
            if settings.temperature > 0:
                uniforms = torch.stack([row_uniforms(settings.seed, keys[i], j, settings.max_new_tokens) for i, j in chunk])
                processors.append(_RowSampler(uniforms, width, settings))
            stopping = _Stopping(check, width)
            with torch.inference_mode():
                generated = model.generate(input_ids=ids, attention_mask=mask, generation_config=config,
                                           logits_processor=processors, stopping_criteria=StoppingCriteriaList([stopping]))
            for row, ((i, j), new) in enumerate(zip(chunk, generated[:, width:].tolist())):
                out[i][j] = new[:stopping.lengths.get(row, len(new))]
                stats["useful_row_steps"] += len(out[i][j])
            steps = generated.shape[1] - width
            stats["forwards"] += steps
            stats["row_steps"] += len(chunk) * steps
            progress(len(chunk))
        return out

