"""Experiment trackers: one run per trial, grouped by study, plus one study run (leaderboard,
plots, report; ``log_study``). Chosen by ``tracking.backend``.

A tracker never decides anything: it mirrors the trial record (config, history, summary,
per-problem tables, adapter) to an external UI. The trial record stays the source of truth.
wandb is imported only inside the functions that use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from harness.config import TrackingConfig

# Neither module imports wandb at import time: it is imported inside the functions that use it.
from harness.tracking.study_run import log_study
from harness.tracking.wandb_tracker import MAX_ROWS

__all__ = ["Tracker", "NullTracker", "open_tracker", "finish_lost_run", "log_study"]


class Tracker(Protocol):
    run_dir: str | None

    def log(self, row: dict[str, Any], *, step: int) -> None: ...

    def log_table(self, key: str, *, columns: list[str], rows: list[list], max_rows: int = MAX_ROWS) -> None: ...

    def log_adapter(self, path: Path, *, name: str, upload: bool, metadata: dict[str, Any]) -> None: ...

    def finish(self, *, summary: dict[str, Any], status: str) -> None: ...


class NullTracker:
    run_dir = None

    def log(self, row: dict[str, Any], *, step: int) -> None:
        pass

    def log_table(self, key: str, *, columns: list[str], rows: list[list], max_rows: int = MAX_ROWS) -> None:
        pass

    def log_adapter(self, path: Path, *, name: str, upload: bool, metadata: dict[str, Any]) -> None:
        pass

    def finish(self, *, summary: dict[str, Any], status: str) -> None:
        pass


def open_tracker(cfg: TrackingConfig, *, study: str, trial: int, config: dict[str, Any], study_dir: Path) -> Tracker:
    if cfg.backend == "none" or cfg.mode == "disabled":
        return NullTracker()
    from harness.tracking.wandb_tracker import WandbTracker

    return WandbTracker(cfg, study=study, trial=trial, config=config, study_dir=study_dir)


def finish_lost_run(cfg: TrackingConfig, *, run_id: str | None, study: str, trial: int, study_dir: Path, reason: str) -> None:
    """Mark the tracker run of a trial whose worker died as failed (no-op without a run)."""
    if not run_id or cfg.backend == "none" or cfg.mode == "disabled":
        return
    from harness.tracking.wandb_tracker import finish_lost_run as finish_wandb

    finish_wandb(cfg, run_id=run_id, study=study, trial=trial, study_dir=study_dir, reason=reason)
