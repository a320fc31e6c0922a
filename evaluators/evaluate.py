"""Evaluate one model on one benchmark: generate -> sandbox -> pass@k -> files.

Writes ``<out_dir>/samples.jsonl`` (task_id, completion), ``results.jsonl`` (plus verdict,
detail, duration) and ``metrics.json`` (pass@k, counts, sandbox, generation settings).
The caller times the two halves separately (generation is model time, execution is
sandbox time), so they are two functions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.files import write_json_atomic, write_jsonl_atomic
from evaluators.benchmarks import Benchmark
from evaluators.generate import GenerationSettings, generate

__all__ = ["generate_samples", "write_results"]


def generate_samples(
    model,
    tokenizer,
    benchmark: Benchmark,
    *,
    settings: GenerationSettings,
    progress: bool = False,
    format_prompt: Callable[[str], str] | None = None,
    add_special_tokens: bool = True,
) -> list[dict[str, Any]]:
    """Completions for every task. ``format_prompt`` renders a task prompt with the training
    template (instruct-style models must see at evaluation what they saw in training)."""
    prompts = [t.prompt if format_prompt is None else format_prompt(t.prompt) for t in benchmark.tasks]
    completions = generate(
        model,
        tokenizer,
        prompts,
        settings=settings,
        stop=benchmark.stop,
        keys=[t.task_id for t in benchmark.tasks],
        progress=progress,
        desc=f"generating {benchmark.name}",
        add_special_tokens=add_special_tokens,
    )
    return [
        {"task_id": task.task_id, "sample": j, "completion": c}
        for task, cs in zip(benchmark.tasks, completions)
        for j, c in enumerate(cs)
    ]


def write_results(out_dir: Path, *, samples: list[dict], results: list[dict], metrics: dict[str, Any]) -> None:
    write_jsonl_atomic(out_dir / "samples.jsonl", samples)
    write_jsonl_atomic(out_dir / "results.jsonl", results)
    write_json_atomic(out_dir / "metrics.json", metrics, trailing_newline=False)  # no final newline, as always
