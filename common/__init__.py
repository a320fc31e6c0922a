"""The bottom layer: small helpers that ``harness``, ``evaluators`` and ``reports`` all use.

It imports the standard library only, so every layer may import it without breaking the
one-way data flow (tests/test_architecture.py checks both).
"""
