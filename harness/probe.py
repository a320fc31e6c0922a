"""The in-training probe: pass@1 on a fixed, seeded set of validation tasks (docs/probe.md).

    probe = Probe(cfg.train.probe, model=..., tokenizer=..., settings=..., sandbox=..., ...)
    scored = probe(step)       # generate -> the trial's sandbox -> ProbeScore
    scored.pass_at_1, scored.se, scored.per_task, scored.samples

The training stage calls it every ``train.task_eval_steps`` (harness.train); the trial writes
its rows to ``history.jsonl`` and its sample generations to ``probe_samples.jsonl``. The tasks
come from a validation split, never the test split that gives the final score: checkpoints
kept, trials pruned or trials selected on test problems would inflate the reported pass@k.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
import statistics
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.train_config import ProbeConfig

__all__ = ["Probe", "ProbeScore", "escape_text", "load_probe_set", "paired_gain", "standard_error"]


@dataclass(frozen=True)
class ProbeScore:
    step: int
    pass_at_1: float
    se: float  # standard error of pass@1 over the probe's tasks
    per_task: tuple[float, ...]  # each task's pass rate (c / n), in probe order: paired comparisons
    seconds: float = 0.0
    samples: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def row(self) -> dict[str, Any]:
        """The probe's ``history.jsonl`` row (a row of its own, beside the Trainer's rows)."""
        return {"step": self.step, "probe/pass@1": self.pass_at_1, "probe/pass@1_se": self.se, "probe_s": round(self.seconds, 3)}


def standard_error(values: list[float] | tuple[float, ...]) -> float:
    """Standard error of the mean of per-task values (sample standard deviation / sqrt(n))."""
    if len(values) < 2:
        return 0.0
    return statistics.stdev(values) / math.sqrt(len(values))


def paired_gain(before: tuple[float, ...], after: tuple[float, ...]) -> tuple[float, float]:
    """(mean gain, its standard error) of ``after`` over ``before``, paired over the same tasks.
    The right noise for two checkpoints scored on one probe set: task difficulty cancels out."""
    if len(before) != len(after):
        raise ValueError(f"paired scores need the same tasks ({len(before)} vs {len(after)})")
    diffs = [b - a for a, b in zip(before, after)]
    return statistics.fmean(diffs), standard_error(diffs)


def escape_text(text: str, limit: int = 2000) -> str:
    """A generation as it may be printed or logged: control and format characters (ANSI escapes,
    carriage returns, bidi overrides, NULs) shown as ``\\x..``/``\\u....`` escapes, newlines and tabs
    kept, cut at ``limit`` characters. HTML escaping is the page's job (reports.page)."""
    out = []
    for ch in text[:limit]:
        if ch in "\n\t" or unicodedata.category(ch)[0] not in "CZ" or ch == " ":
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out) + ("..." if len(text) > limit else "")


def load_probe_set(spec: ProbeConfig):
    """The probe's benchmark: ``spec.size`` tasks of ``spec.split`` drawn with ``spec.seed``, in split order."""
    from evaluators.benchmarks import load_benchmark

    full = load_benchmark(spec.benchmark, split=spec.split)
    n = min(spec.size, len(full.tasks))
    chosen = sorted(random.Random(spec.seed).sample(range(len(full.tasks)), n))
    tasks = tuple(full.tasks[i] for i in chosen)
    ids = [t.task_id for t in tasks]
    meta = {**dict(full.meta), "probe": {"benchmark": spec.benchmark, "split": spec.split, "size": n, "seed": spec.seed,
                                         "task_ids": ids, "tasks_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]}}
    return dataclasses.replace(full, tasks=tasks, meta=meta)


class Probe:
    """Generate for the probe set with the trial's settings and score it in the trial's sandbox."""

    def __init__(self, spec: ProbeConfig, *, model, tokenizer, settings, sandbox, timeout_s: float,
                 format_prompt: Callable[[str], str], add_special_tokens: bool):
        self.spec, self.model, self.tokenizer, self.settings = spec, model, tokenizer, settings
        self.sandbox, self.timeout_s = sandbox, timeout_s
        self.format_prompt, self.add_special_tokens = format_prompt, add_special_tokens
        self.benchmark = load_probe_set(spec)

    @property
    def description(self) -> dict[str, Any]:
        """What the record says about the probe set (``manifest.json`` ``probe``)."""
        return {**self.benchmark.meta["probe"], "generation": self.settings.as_record(), "samples_recorded": self.spec.samples}

    def __call__(self, step: int) -> ProbeScore:
        from evaluators.evaluate import generate_samples
        from evaluators.scoring import score

        started = time.perf_counter()
        samples = generate_samples(self.model, self.tokenizer, self.benchmark, settings=self.settings,
                                   format_prompt=self.format_prompt, add_special_tokens=self.add_special_tokens)
        scored = score(self.benchmark, samples, sandbox=self.sandbox, ks=(1,), timeout_s=self.timeout_s)
        rates = tuple(v["c"] / v["n"] for v in (scored.per_task[t.task_id] for t in self.benchmark.tasks))
        shown = {t.task_id: t.prompt for t in self.benchmark.tasks[: self.spec.samples]}
        firsts = []
        for r in scored.results:  # each shown task's first sample, the same tasks at every step
            if r["task_id"] in shown and r["sample"] == 0:
                firsts.append({"step": step, "task_id": r["task_id"], "prompt": self.format_prompt(shown[r["task_id"]]),
                               "completion": r["completion"], "status": r["status"], "passed": r["passed"]})
        return ProbeScore(step=step, pass_at_1=scored.metrics["pass@1"], se=standard_error(rates), per_task=rates,
                          seconds=time.perf_counter() - started, samples=tuple(firsts))
