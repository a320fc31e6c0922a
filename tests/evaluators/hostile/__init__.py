"""Hostile programs for the sandbox contract test (tests/evaluators/test_sandbox_contract.py)."""
