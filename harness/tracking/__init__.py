"""Experiment trackers: one run per trial, chosen by ``tracking.backend`` from ``TRACKERS``
(one file per implementation, the interface in ``_base``). W&B also keeps a study run
(leaderboard, plots, report; ``log_study``).

A tracker never decides anything: it mirrors the trial record (config, history, summary,
per-problem tables, adapter) to an external UI. The trial record stays the source of truth.
No tracking library is imported here: each is imported inside the functions that use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.tracking import study_run, tensorboard_tracker, wandb_tracker
from harness.tracking._base import NullTracker, Tracker, TrackerBackend, TrackingConfig, no_lost_run

__all__ = ["TRACKERS", "NullTracker", "Tracker", "TrackerBackend", "TrackingConfig", "finish_lost_run", "log_study", "open_tracker"]

# The registry: ``tracking.backend`` -> its entry. A new tracker is a file plus one entry here
# (and a reader in tests/harness/test_tracking_contract.py).
TRACKERS: dict[str, TrackerBackend] = {
    t.name: t
    for t in (
        TrackerBackend("none", lambda cfg, **kw: NullTracker(), no_lost_run,
                       summary="nothing beyond the trial record"),
        TrackerBackend("wandb", wandb_tracker.WandbTracker, wandb_tracker.finish_lost_run, log_study=study_run.log_study,
                       summary="one run per trial grouped by study, plus a study run; offline by default"),
        TrackerBackend("tensorboard", tensorboard_tracker.TensorBoardTracker, tensorboard_tracker.finish_lost_run,
                       summary="event files in each trial's record (trial-<n>/tensorboard/)"),
    )
}  # fmt: skip


def _backend(cfg: TrackingConfig) -> TrackerBackend:
    # tracking.mode=disabled turns any backend off; TrackingConfig has already checked the name.
    return TRACKERS["none" if cfg.mode == "disabled" else cfg.backend]


def open_tracker(cfg: TrackingConfig, *, study: str, trial: int, config: dict[str, Any], study_dir: Path) -> Tracker:
    """The tracker of one trial, whose record is ``study_dir/trial-<trial>``."""
    return _backend(cfg).open(cfg, study=study, trial=trial, config=config, study_dir=study_dir)


def finish_lost_run(cfg: TrackingConfig, *, run_id: str | None, study: str, trial: int, study_dir: Path, reason: str) -> None:
    """Mark the tracker run of a trial whose worker died as failed (no-op without a run)."""
    if run_id:
        _backend(cfg).finish_lost_run(cfg, run_id=run_id, study=study, trial=trial, study_dir=study_dir, reason=reason)


def log_study(cfg: TrackingConfig, *, study: str, study_dir: Path, columns: list[str], rows: list[dict[str, Any]],
              figures: dict[str, dict[str, Any]], report: Path | None, summary: dict[str, Any]) -> str | None:
    """The study run of backends that have one (W&B: ``study_run.log_study``, best effort);
    None for the others."""
    log = _backend(cfg).log_study
    if log is None:
        return None
    return log(cfg, study=study, study_dir=study_dir, columns=columns, rows=rows, figures=figures, report=report,
               summary=summary)
