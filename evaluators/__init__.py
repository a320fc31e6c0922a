"""Evaluation stage: benchmarks, generation, sandboxed execution, pass@k, eval loss.

This package never imports ``harness`` and imports nothing heavy at import time,
so ``import evaluators`` and ``python -m evaluators.execute --help`` stay fast.
"""
