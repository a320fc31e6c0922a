"""Evaluation stage: benchmarks, generation engines, sandboxed execution, pass@k, lm-eval suites.
(Eval loss is measured while training, in ``harness.train``.)

This package never imports ``harness`` and imports nothing heavy at import time,
so ``import evaluators`` and ``python -m evaluators.execute --help`` stay fast.
"""
