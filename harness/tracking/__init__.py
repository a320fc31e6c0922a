"""Experiment trackers: one run per trial, grouped by study. Chosen by ``tracking.backend``.

A tracker never decides anything: it mirrors the trial record (config, history, summary)
to an external UI. The trial record stays the source of truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from harness.config import TrackingConfig

__all__ = ["Tracker", "NullTracker", "open_tracker", "finish_lost_run"]


class Tracker(Protocol):
    run_dir: str | None

    def log(self, row: dict[str, Any], *, step: int) -> None: ...

    def finish(self, *, summary: dict[str, Any], status: str) -> None: ...


class NullTracker:
    run_dir = None

    def log(self, row: dict[str, Any], *, step: int) -> None:
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
