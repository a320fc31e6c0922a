"""The ``hf`` engine: continuous batching over a Hugging Face causal LM, driven step by step.

``model.generate`` keeps a batch together until its last row stops, so rows that finished early
keep computing, and a batch of n samples of one prompt computes its prefill n times. This engine
runs the decode loop itself, over the model's forward and a ``DynamicCache``:

- **refill**: a row leaves the batch the step it stops, and waiting rows join once half of
  the batch is free, so the batch stays full and no step is computed for a finished row;
- **shared prefill**: the rows joining together are grouped by prompt; each prompt's prefill is
  computed once and its cache copied to its samples;
- **length-aware order**: prompts join shortest first, so rows of similar length share a batch;
- **compact cache**: a joining row is left-padded to the batch's cache length (or the batch to
  its), and the columns no remaining row attends to are cut off when rows leave.

Positions are counted per row from its first real token, as ``generate`` counts them under left
padding, and the model builds its own attention mask from the 2-D padding mask; so each row's
tokens are those of ``model.generate`` on the prompt alone (tests/evaluators/test_engines.py).
Models whose forward cannot be driven this way (prompt-learning PEFT methods, encoder-decoders,
sliding-window or recurrent caches) are refused by ``unsupported`` and go to ``hf_generate``.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict, deque
from collections.abc import Sequence

from evaluators.engines._base import GenerationSettings, StopCheck, choose_tokens, row_uniforms

__all__ = ["HFEngine"]

REFILL_SHARE = 2  # waiting rows join once batch_size // REFILL_SHARE slots are free (or the batch is empty)


class _Batch:
    """The rows decoding together: their cache, padding mask, positions and pending tokens."""

    def __init__(self, rows, cache, mask, positions, pending, uniforms):
        self.rows = rows  # [(prompt index, sample index, new token ids)]
        self.cache, self.mask, self.positions, self.pending, self.uniforms = cache, mask, positions, pending, uniforms

    def __len__(self) -> int:
        return len(self.rows)

    def keep(self, keep: list[int]) -> None:
        """Keep only rows ``keep`` (in order), then cut the columns none of them attends to."""
        import torch

        if len(keep) == len(self.rows):
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        self.rows = [self.rows[k] for k in keep]
        self.mask, self.positions, self.pending = self.mask[index], self.positions[index], self.pending[index]
        self.uniforms = None if self.uniforms is None else self.uniforms[index]
        used = self.mask.any(0).nonzero()
        first = int(used[0]) if len(used) else self.mask.shape[1]
        for layer in self.cache.layers:
            layer.keys, layer.values = layer.keys[index, :, first:], layer.values[index, :, first:]
        self.mask = self.mask[:, first:]

    def join(self, other: _Batch) -> None:
        """Append ``other``'s rows, left-padding whichever cache is shorter."""
        import torch

        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.keys = torch.cat([_pad_left(mine.keys, width), _pad_left(theirs.keys, width)])
            mine.values = torch.cat([_pad_left(mine.values, width), _pad_left(theirs.values, width)])
        self.mask = torch.cat([_pad_left(self.mask, width, dim=1), _pad_left(other.mask, width, dim=1)])
        self.positions = torch.cat([self.positions, other.positions])
        self.pending = torch.cat([self.pending, other.pending])
        if self.uniforms is not None:
            self.uniforms = torch.cat([self.uniforms, other.uniforms])
        self.rows += other.rows


def _pad_left(t, width: int, dim: int = 2):
    import torch

    missing = width - t.shape[dim]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


class HFEngine:
    name = "hf"

    def __init__(self) -> None:
        self.stats: dict[str, int] = {}  # the last call's forwards and row-steps (perf/bench_engines.py)

    def unsupported(self, model) -> str | None:
        peft_config = getattr(model, "active_peft_config", None)
        if peft_config is not None and getattr(peft_config, "is_prompt_learning", False):
            return f"{type(peft_config).__name__} prepends virtual tokens that the step-by-step loop does not feed"
        config = getattr(model, "config", None)
        if config is None or getattr(config, "is_encoder_decoder", False):
            return "not a decoder-only model"
        layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
        if layer_types != {"full_attention"}:
            return f"its layers are {sorted(layer_types)}, not all full attention"
        return None

    def generate_ids(self, model, tokenizer, prompt_ids: Sequence[Sequence[int]], *, keys: Sequence[str],
                     settings: GenerationSettings, stop: Sequence[str], progress) -> list[list[list[int]]]:
        import torch

        device = next(model.parameters()).device
        order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))
        waiting = deque((i, j) for i in order for j in range(settings.n_samples))
        out: list[list[list[int]]] = [[[] for _ in range(settings.n_samples)] for _ in prompt_ids]
        check = StopCheck(tokenizer, stop)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        parameters = _forward_parameters(model)
        cache_name = "cache" if "cache" in parameters else "past_key_values"  # renamed in transformers 5
        forward_kwargs = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
        refill_at = max(1, settings.batch_size // REFILL_SHARE)
        batch: _Batch | None = None
        self.stats = stats = {"forwards": 0, "row_steps": 0, "useful_row_steps": 0}

        def finish(rows_new_tokens: list[tuple[int, int, list[int]]]) -> list[int]:
            """Record finished rows; return the indices of those still going."""
            going = []
            for k, done in enumerate(check.done([r[2] for r in rows_new_tokens])):
                i, j, new = rows_new_tokens[k]
                if done or len(new) >= settings.max_new_tokens:
                    out[i][j] = new
                    stats["useful_row_steps"] += len(new)
                else:
                    going.append(k)
            if len(going) < len(rows_new_tokens):
                progress(len(rows_new_tokens) - len(going))
            return going

        with torch.inference_mode():
            while waiting or batch:
                free = settings.batch_size - (len(batch) if batch else 0)
                if waiting and (not batch or free >= refill_at):
                    joining = [waiting.popleft() for _ in range(min(free, len(waiting)))]
                    new = self._prefill(model, prompt_ids, joining, keys=keys, settings=settings, pad=pad, device=device,
                                        cache_name=cache_name, forward_kwargs=forward_kwargs)
                    stats["forwards"] += 1
                    stats["row_steps"] += len(new)  # each row's first token comes from the prefill
                    new.keep(finish(new.rows))
                    if len(new):
                        if batch:
                            batch.join(new)
                        else:
                            batch = new
                if not batch:
                    continue
                batch.mask = torch.cat([batch.mask, batch.mask.new_ones(len(batch), 1)], dim=1)
                logits = model(input_ids=batch.pending[:, None], attention_mask=batch.mask,
                               position_ids=batch.positions[:, None], use_cache=True, **{cache_name: batch.cache}).logits[:, -1]
                batch.positions = batch.positions + 1
                stats["forwards"] += 1
                stats["row_steps"] += len(batch)
                batch.pending = self._choose(logits, batch, settings)
                for (_, _, new), token in zip(batch.rows, batch.pending.tolist()):
                    new.append(token)
                going = finish(batch.rows)
                if going:
                    batch.keep(going)
                else:
                    batch = None
        return out

    def _prefill(self, model, prompt_ids, joining, *, keys, settings, pad, device, cache_name, forward_kwargs) -> _Batch:
        """One forward over the distinct prompts of ``joining``; each row gets its prompt's cache and first token."""
        import torch
        from transformers import DynamicCache

        groups: OrderedDict[int, list[int]] = OrderedDict()
        for i, j in joining:
            groups.setdefault(i, []).append(j)
        prompts = [prompt_ids[i] for i in groups]
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                       **{cache_name: cache}, **forward_kwargs).logits[:, -1]
        index = torch.tensor([g for g, samples in enumerate(groups.values()) for _ in samples], device=device)
        for layer in cache.layers:
            layer.keys, layer.values = layer.keys[index], layer.values[index]
        rows = [(i, j, []) for i, samples in groups.items() for j in samples]
        uniforms = None
        if settings.temperature > 0:
            uniforms = torch.stack([row_uniforms(settings.seed, keys[i], j, settings.max_new_tokens) for i, j, _ in rows])
        mask = mask[index]
        batch = _Batch(rows, cache, mask, mask.sum(-1), None, uniforms)
        batch.pending = self._choose(logits[index], batch, settings)
        for (_, _, new), token in zip(batch.rows, batch.pending.tolist()):
            new.append(token)
        return batch

    @staticmethod
    def _choose(logits, batch: _Batch, settings: GenerationSettings):
        import torch

        if batch.uniforms is None:
            return choose_tokens(logits, None, temperature=0, top_p=1)
        steps = torch.tensor([len(new) for _, _, new in batch.rows], device=batch.uniforms.device)
        uniforms = batch.uniforms.gather(1, steps.clamp(max=settings.max_new_tokens - 1)[:, None]).squeeze(1)
        return choose_tokens(logits, uniforms, temperature=settings.temperature, top_p=settings.top_p)


def _forward_parameters(model) -> set[str]:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return set(inspect.signature(base.forward).parameters)
