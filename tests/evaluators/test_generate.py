"""Generation plumbing: stop sequences, prompt templates, special tokens."""

from __future__ import annotations

import pytest

import evaluators.evaluate as evaluate_mod
from evaluators.benchmarks import load_benchmark
from evaluators.generate import GenerationSettings, truncate_at_stop


def test_truncate_at_the_earliest_stop_sequence():
    assert truncate_at_stop("    return x\n\ndef g():\n#", ("\n#", "\ndef")) == "    return x\n"
    assert truncate_at_stop("    return x\n", ("\nclass",)) == "    return x\n"


def test_prompts_are_rendered_with_the_training_template(monkeypatch):
    seen = {}

    def fake_generate(model, tokenizer, prompts, *, settings, stop, progress, desc, add_special_tokens):
        seen.update(prompts=list(prompts), add_special_tokens=add_special_tokens)
        return [["    pass\n"] * settings.n_samples for _ in prompts]

    monkeypatch.setattr(evaluate_mod, "generate", fake_generate)
    bench = load_benchmark("toy", limit=3)
    samples = evaluate_mod.generate_samples(
        None, None, bench, settings=GenerationSettings(n_samples=2),
        format_prompt=lambda p: f"### Instruction:\n{p}\n### Response:\n", add_special_tokens=False,
    )
    assert seen["prompts"] == [f"### Instruction:\n{t.prompt}\n### Response:\n" for t in bench.tasks]
    assert seen["add_special_tokens"] is False
    assert [s["task_id"] for s in samples] == [t.task_id for t in bench.tasks for _ in range(2)]
    assert [s["sample"] for s in samples[:2]] == [0, 1]


class _WholeTextStop:
    """The reference: decode every row's whole new text at every step (what the tail check replaces)."""

    def __init__(self, tokenizer, prompt_width, stop):
        self.tokenizer, self.prompt_width, self.stop = tokenizer, prompt_width, tuple(stop)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_width:], skip_special_tokens=False)
        eos = self.tokenizer.eos_token or "\x00never\x00"
        return torch.tensor([eos in t or any(s in t for s in self.stop) for t in texts], dtype=torch.bool)


@pytest.mark.integration
@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_the_tail_stop_check_stops_where_the_whole_text_check_does(compose, monkeypatch, temperature):
    import evaluators.generate as gen
    from evaluators.benchmarks import load_benchmark
    from harness.config import trial_config
    from harness.models import load_model, load_tokenizer, resolve_model

    cfg = trial_config(compose([]))
    path, _ = resolve_model(cfg.model, cache_dir=cfg.cache_dir)
    tokenizer, model = load_tokenizer(path), load_model(path, cfg=cfg.model, device="cpu")
    bench = load_benchmark("toy", split="test", limit=24)
    prompts, stop = [t.prompt for t in bench.tasks], bench.stop
    settings = gen.GenerationSettings(n_samples=3, temperature=temperature, top_p=0.95, max_new_tokens=48, batch_size=24, seed=5)
    calls = []
    real = gen._StopOnSequences

    class Counting(real):
        def __call__(self, input_ids, scores, **kwargs):
            calls.append(input_ids.shape[1] - self.prompt_width)
            return super().__call__(input_ids, scores, **kwargs)

    monkeypatch.setattr(gen, "_StopOnSequences", Counting)
    tail = gen.generate(model, tokenizer, prompts, settings=settings, stop=stop)
    steps_tail = list(calls)
    calls.clear()
    monkeypatch.setattr(gen, "_StopOnSequences", lambda tok, width, stop: (lambda ids, scores, **kw: (calls.append(ids.shape[1] - width),
                                                                                                  _WholeTextStop(tok, width, stop)(ids, scores))[1]))
    whole = gen.generate(model, tokenizer, prompts, settings=settings, stop=stop)
    assert tail == whole  # same completions, greedy or sampled (same steps, so the same random draws)
    assert steps_tail == calls  # and every batch stopped at the same step
    assert any(len(c) < 40 for cs in tail for c in cs)  # rows did stop early


class _CharTokenizer:
    """One character per token: a stop sequence spans as many tokens as it has characters."""

    eos_token = "$"
    alphabet = "ab\ndef#x$"

    def batch_decode(self, ids, skip_special_tokens=False):
        return ["".join(self.alphabet[i] for i in row.tolist()) for row in ids]


def test_the_tail_check_agrees_with_the_whole_text_check_at_every_step():
    import random

    import torch

    from evaluators.generate import _StopOnSequences

    rng = random.Random(0)
    tok, stop, width = _CharTokenizer(), ("\ndef", "\n#"), 3
    rows = torch.tensor([[rng.randrange(len(tok.alphabet) - 1) for _ in range(width + 60)] for _ in range(64)])
    rows[5, 40] = tok.alphabet.index("$")  # an EOS in one row
    tail, whole = _StopOnSequences(tok, width, stop), _WholeTextStop(tok, width, stop)
    for t in range(width + 1, rows.shape[1] + 1):
        assert tail(rows[:, :t], None).tolist() == whole(rows[:, :t], None).tolist(), f"step {t - width}"
    assert 0 < int(whole(rows, None).sum()) < 64  # some rows stopped, some did not


@pytest.mark.integration
def test_greedy_batches_sorted_by_length_return_what_each_prompt_gets_alone_in_input_order(compose):
    import evaluators.generate as gen
    from harness.config import trial_config
    from harness.models import load_model, load_tokenizer, resolve_model

    cfg = trial_config(compose([]))
    path, _ = resolve_model(cfg.model, cache_dir=cfg.cache_dir)
    tokenizer, model = load_tokenizer(path), load_model(path, cfg=cfg.model, device="cpu")
    bench = load_benchmark("toy", split="test", limit=40)
    prompts = [t.prompt for t in bench.tasks][::-1]  # mixed lengths, not in length order
    settings = gen.GenerationSettings(n_samples=2, temperature=0.0, max_new_tokens=40, batch_size=16)
    batched = gen.generate(model, tokenizer, prompts, settings=settings, stop=bench.stop)
    alone = [gen.generate(model, tokenizer, [p], settings=settings, stop=bench.stop)[0] for p in prompts]
    assert batched == alone  # no padding alone: same tokens, and each prompt's results in its own place
