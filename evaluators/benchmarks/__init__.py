"""Benchmark registry. Each benchmark is one module exposing ``load(**options) -> Benchmark``."""

from __future__ import annotations

import importlib

from evaluators.benchmarks.base import HUMANEVAL_STOP, Benchmark, Task

__all__ = ["BENCHMARKS", "Benchmark", "Task", "HUMANEVAL_STOP", "load_benchmark"]

BENCHMARKS: dict[str, str] = {
    "toy": "evaluators.benchmarks.toy",
    "humaneval": "evaluators.benchmarks.humaneval",
    "mbpp": "evaluators.benchmarks.mbpp",
}


def load_benchmark(name: str, **options) -> Benchmark:
    """Load a benchmark by name; options are benchmark-specific (split, limit, prompt_format, ...)."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    return importlib.import_module(BENCHMARKS[name]).load(**options)
