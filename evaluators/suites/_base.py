"""What every local suite is: an lm-eval task YAML in ``tasks/`` with its data file next to it, a headline
metric and its direction; and what a suite run returns.

Nothing here imports lm-eval, torch or ``datasets``: ``evaluators.suites.LOCAL_SUITES`` is the list of
names that pre-flight checks, and that must stay fast. A local suite's data is read here, so that no
local suite touches the network or the ``datasets`` cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TASKS_DIR", "LocalSuite", "SuiteResult"]

TASKS_DIR = Path(__file__).resolve().parent / "tasks"


@dataclass(frozen=True)
class LocalSuite:
    """One registry entry (``evaluators.suites.LOCAL_SUITES``), keyed by its ``eval.suites[].name``.

    ``yaml``: the task file in ``tasks/`` (lm-eval task ``harness_<name>``, its data under
    ``dataset_kwargs.data_files.test``); ``metric``: the headline metric, one of the task's
    ``metric_list``; ``higher_is_better``: its direction (forgetting is measured in it).
    """

    name: str
    yaml: str
    metric: str
    higher_is_better: bool
    summary: str

    @property
    def yaml_path(self) -> Path:
        return TASKS_DIR / self.yaml

    def config(self) -> dict[str, Any]:
        """The task YAML as lm-eval reads it (its data still named as a file)."""
        import yaml

        return yaml.safe_load(self.yaml_path.read_text())

    def data_path(self, config: dict[str, Any] | None = None) -> Path:
        """The suite's data file (JSON lines, one document each)."""
        return TASKS_DIR / (config or self.config())["dataset_kwargs"]["data_files"]["test"]

    def documents(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The suite's documents, the first ``limit`` of them (None or 0: all)."""
        rows = [json.loads(line) for line in self.data_path().read_text().splitlines() if line.strip()]
        return rows[:limit] if limit else rows


@dataclass
class SuiteResult:
    name: str
    task: str
    metric: str
    value: float
    higher_is_better: bool
    metrics: dict[str, float]  # every aggregate lm-eval reported
    docs: list[dict[str, Any]] = field(default_factory=list)  # per document: doc_id, doc_hash, score, lm-eval's outputs
