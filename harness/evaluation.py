"""The evaluate stage, shared by trials and ``python -m harness.evaluate``: prompts rendered with the
training template, generation (evaluators.generate), scoring in one sandbox (evaluators.scoring),
``eval/<benchmark>/`` written to the record, then the lm-eval suites with forgetting (harness.suites).
A saved adapter scored later goes through exactly what its trial went through.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.files import write_text_atomic
from harness.config import TrialConfig
from harness.record import TrialRecord

__all__ = ["evaluate_model", "log_eval_tables", "open_trial_sandbox", "prompt_renderer"]


def evaluate_model(cfg: TrialConfig, *, model, tokenizer, template: str, record: TrialRecord, progress: bool,
                   sandbox_labels: dict[str, str] | None = None, suite_base: dict[str, Any] | None = None,
                   sandbox=None) -> dict[str, Any]:
    """Generate for every configured benchmark, score in one sandbox, write ``eval/<benchmark>/``;
    then the lm-eval suites with forgetting against ``suite_base`` (harness.suites), in ``eval/<suite>/``.
    Returns the headline pass@k and suite figures. Shared by trials and ``harness.evaluate``, so a
    saved adapter scored later goes through exactly the same prompts, generation, sandbox and suites.
    ``sandbox``: an open one to reuse (the trial's); None opens one for this evaluation."""
    from evaluators.benchmarks import load_benchmark
    from evaluators.evaluate import generate_samples, write_results
    from evaluators.scoring import score
    from harness.suites import evaluate_suites

    settings = cfg.eval.generation
    render_prompt = prompt_renderer(template, tokenizer)
    metrics: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if sandbox is None:
            sandbox = open_trial_sandbox(cfg, record=record, labels=sandbox_labels or {}, stack=stack)
        for spec in cfg.eval.benchmarks:
            options = {"split": spec.split, "limit": spec.limit}
            if spec.prompt_format:
                options["prompt_format"] = spec.prompt_format
            benchmark = load_benchmark(spec.name, **options)
            with record.phase("generate"):
                samples = generate_samples(
                    model, tokenizer, benchmark, settings=settings, progress=progress,
                    format_prompt=render_prompt, add_special_tokens=template != "tokenizer",
                )
            with record.phase("execute"):
                scored = score(benchmark, samples, sandbox=sandbox, ks=cfg.eval.ks, timeout_s=cfg.eval.timeout_s, progress=progress)
            with record.phase("record"):
                rendered = "\x00".join(f"{t.task_id}\x01{render_prompt(t.prompt)}" for t in benchmark.tasks)
                bench_metrics = {
                    **scored.metrics,
                    "generation": settings.as_record(),
                    "prompt_template": template,
                    "prompts_sha256": hashlib.sha256(rendered.encode()).hexdigest(),  # the gate compares what the model saw
                    "higher_is_better": True,
                    "per_task": scored.per_task,
                }
                write_results(record.dir / "eval" / spec.name, samples=samples, results=scored.results, metrics=bench_metrics)
                # the rendered prompts, once per task: the report shows them beside the completions
                write_text_atomic(record.dir / "eval" / spec.name / "prompts.jsonl", "".join(
                    json.dumps({"task_id": t.task_id, "prompt": render_prompt(t.prompt)}) + "\n" for t in benchmark.tasks))
            for k in cfg.eval.ks:
                if f"pass@{k}" in scored.metrics:
                    metrics[f"{spec.name}/pass@{k}"] = scored.metrics[f"pass@{k}"]
    metrics.update(evaluate_suites(cfg, model=model, tokenizer=tokenizer, record=record, base=suite_base or {}))
    return metrics


def open_trial_sandbox(cfg: TrialConfig, *, record: TrialRecord, labels: dict[str, str], stack: contextlib.ExitStack):
    from evaluators.sandbox import open_sandbox

    sandbox = stack.enter_context(open_sandbox(cfg.eval.sandbox, workers=cfg.eval.workers, labels=labels))
    record.update(sandbox={"backend": sandbox.name, "isolation": sandbox.isolation, "image": sandbox.image})
    return sandbox


def prompt_renderer(template: str, tokenizer) -> Callable[[str], str]:
    """A task prompt as the model sees it: the training template, so an instruct-tuned adapter
    sees the format it learned."""
    from harness.data import format_prompt

    return lambda prompt: prompt if template == "none" else format_prompt(prompt, template, tokenizer=tokenizer)


def log_eval_tables(tracker, eval_dir: Path, benchmark: str) -> None:
    """Per-problem results and each problem's first sample (prompt, completion, verdict) as tracker tables."""
    from harness.record import read_json

    per_task = read_json(eval_dir / "metrics.json").get("per_task") or {}
    tracker.log_table(f"{benchmark}/problems", columns=["task_id", "n", "c", "pass_rate"],
                      rows=[[t, v["n"], v["c"], v["c"] / v["n"] if v["n"] else None] for t, v in per_task.items()])
    prompts = {}
    for line in (eval_dir / "prompts.jsonl").read_text().splitlines():
        row = json.loads(line)
        prompts[row["task_id"]] = row["prompt"]
    firsts: dict[str, list] = {}
    for line in (eval_dir / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["task_id"] not in firsts:
            firsts[r["task_id"]] = [r["task_id"], prompts.get(r["task_id"]), r["completion"], r["status"], r.get("detail", "")]
    tracker.log_table(f"{benchmark}/samples", columns=["task_id", "prompt", "completion", "verdict", "detail"], rows=list(firsts.values()))
