"""Generation plumbing: stop sequences, prompt templates, special tokens."""

from __future__ import annotations

import evaluators.evaluate as evaluate_mod
from evaluators.benchmarks import load_benchmark
from evaluators.generate import GenerationSettings, truncate_at_stop


def test_truncate_at_the_earliest_stop_sequence():
    assert truncate_at_stop("    return x\n\ndef g():\n#", ("\n#", "\ndef")) == "    return x\n"
    assert truncate_at_stop("    return x\n", ("\nclass",)) == "    return x\n"


def test_prompts_are_rendered_with_the_training_template(monkeypatch):
    seen = {}

    def fake_generate(model, tokenizer, prompts, *, settings, stop, keys, progress, desc, add_special_tokens):
        seen.update(prompts=list(prompts), keys=list(keys), add_special_tokens=add_special_tokens)
        return [["    pass\n"] * settings.n_samples for _ in prompts]

    monkeypatch.setattr(evaluate_mod, "generate", fake_generate)
    bench = load_benchmark("toy", limit=3)
    samples = evaluate_mod.generate_samples(
        None, None, bench, settings=GenerationSettings(n_samples=2, temperature=0.8),
        format_prompt=lambda p: f"### Instruction:\n{p}\n### Response:\n", add_special_tokens=False,
    )
    assert seen["prompts"] == [f"### Instruction:\n{t.prompt}\n### Response:\n" for t in bench.tasks]
    assert seen["add_special_tokens"] is False
    assert seen["keys"] == [t.task_id for t in bench.tasks]  # each task's samples are drawn from its own stream
    assert [s["task_id"] for s in samples] == [t.task_id for t in bench.tasks for _ in range(2)]
    assert [s["sample"] for s in samples[:2]] == [0, 1]
