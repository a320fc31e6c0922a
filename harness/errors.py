"""Errors the user should see as one clear line, not a traceback."""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "TrialFailed"]


class ConfigError(ValueError):
    """A config key has a bad value. The message names the key, the value and what is allowed."""

    def __init__(self, key: str, value: object, expected: str):
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"{key}={value!r}: {expected}")


class DataError(ValueError):
    """A dataset is malformed, empty after filtering, or otherwise unusable."""


class TrialFailed(RuntimeError):
    """A trial failed for a recorded reason (the study goes on)."""
