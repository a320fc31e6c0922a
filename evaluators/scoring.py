"""Score completions: samples -> sandbox verdicts -> per-sample results, per-task counts, pass@k.

    result = score(load_benchmark("humaneval"), samples, sandbox=sb, ks=(1, 10))
    result.results   # one dict per sample, input order: the sample's fields + passed, result, status, ...
    result.per_task  # {task_id: {"n": 10, "c": 3}}
    result.metrics   # {"pass@1": ..., "pass@10": ..., "n_tasks": ..., "sandbox": "docker", "image": ...}

Input problems (unknown task ids, missing completions, tasks without samples) raise
:class:`ScoringInputError` before anything runs. Sandbox failures raise ``SandboxError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from evaluators.benchmarks._base import Benchmark
from evaluators.passk import mean_pass_at_k
from evaluators.sandbox import STATUSES, Program, Sandbox, SandboxError, Verdict

__all__ = ["ScoreResult", "ScoringInputError", "score", "check_samples"]


class ScoringInputError(ValueError):
    """The samples do not fit the benchmark (unknown task, missing completion, missing tasks)."""


@dataclass
class ScoreResult:
    results: list[dict]
    metrics: dict
    per_task: dict[str, dict[str, int]] = field(default_factory=dict)


def check_samples(benchmark: Benchmark, samples: Sequence[Mapping], *, subset: bool = False) -> list[str]:
    """Validate samples against the benchmark; returns the task ids that have samples, in benchmark order."""
    tasks = benchmark.by_id()
    seen: set[str] = set()
    for i, s in enumerate(samples):
        where = f"sample {i + 1}"
        if "task_id" not in s:
            raise ScoringInputError(f"{where}: missing 'task_id'")
        tid = s["task_id"]
        if tid not in tasks:
            raise ScoringInputError(f"{where}: unknown task_id {tid!r} for benchmark {benchmark.name!r}")
        if "completion" not in s:
            raise ScoringInputError(f"{where} ({tid}): missing 'completion'")
        if not isinstance(s["completion"], str):
            raise ScoringInputError(f"{where} ({tid}): 'completion' must be a string, got {type(s['completion']).__name__}")
        seen.add(tid)
    if not seen:
        raise ScoringInputError("no samples to score")
    missing = [t for t in tasks if t not in seen]
    if missing and not subset:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise ScoringInputError(
            f"{len(missing)} of {len(tasks)} {benchmark.name} tasks have no samples ({shown}); "
            "pass subset=True (--subset) to score only the tasks present"
        )
    return [t for t in tasks if t in seen]


def _record(sample: Mapping, v: Verdict) -> dict:
    return {**sample, "passed": v.passed, "result": v.result, "status": v.status,
            "detail": v.detail, "duration_s": round(v.duration_s, 6)}


def score(
    benchmark: Benchmark,
    samples: Sequence[Mapping],
    *,
    sandbox: Sandbox,
    ks: Sequence[int] | None = (1, 10, 100),
    timeout_s: float = 3.0,
    subset: bool = False,
    progress: bool = False,
) -> ScoreResult:
    """Run every sample's program in ``sandbox`` and compute pass@k for every k in ``ks`` that is
    <= the smallest n (``ks=None``: every k from 1 to the smallest n)."""
    scored_tasks = check_samples(benchmark, samples, subset=subset)
    tasks = benchmark.by_id()

    # 1. one program per sample, in input order
    programs = [
        Program(id=str(i), source=benchmark.program(tasks[s["task_id"]], s["completion"]), timeout_s=timeout_s)
        for i, s in enumerate(samples)
    ]
    # 2. run them (sandbox failures propagate: they are never counted as failed samples)
    try:
        verdicts = sandbox.run(programs, progress=progress)
    except SandboxError as e:  # keep what was judged, for the caller to save
        partial = getattr(e, "partial", None) or []
        e.partial_results = [_record(s, v) for s, v in zip(samples, partial) if v is not None]
        raise

    # 3. per-sample records: the sample's own fields first, then ours
    results = [_record(s, v) for s, v in zip(samples, verdicts, strict=True)]

    # 4. per-task counts and pass@k for every requested k that every task can support
    per_task = {t: {"n": 0, "c": 0} for t in scored_tasks}
    for r in results:
        per_task[r["task_id"]]["n"] += 1
        per_task[r["task_id"]]["c"] += int(r["passed"])
    min_n = min(c["n"] for c in per_task.values())
    if ks is None:
        ks = range(1, min_n + 1)
    valid_ks = sorted(k for k in set(ks) if k <= min_n)
    metrics: dict = dict(mean_pass_at_k({t: (c["n"], c["c"]) for t, c in per_task.items()}, valid_ks)) if valid_ks else {}
    metrics.update(
        benchmark=benchmark.name,
        benchmark_meta=dict(benchmark.meta),
        n_tasks=len(per_task),
        n_tasks_in_benchmark=len(tasks),
        subset=len(per_task) < len(tasks),
        n_samples=len(results),
        min_n=min_n,
        ks_skipped=sorted(k for k in set(ks) if k > min_n),
        timeout_s=timeout_s,
        sandbox=sandbox.name,
        isolation=sandbox.isolation,
        image=sandbox.image,
        statuses={s: sum(r["status"] == s for r in results) for s in STATUSES},
    )
    return ScoreResult(results=results, metrics=metrics, per_task=per_task)
