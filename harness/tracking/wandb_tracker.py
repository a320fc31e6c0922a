"""W&B: one run per trial, grouped by study; offline unless the config says online.

Offline runs need no login and no network; they land in ``<study>/wandb/offline-run-*``
and can be uploaded later with ``wandb sync``. The run's summary holds every headline
metric, so the W&B runs table sorts as a leaderboard.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.config import TrackingConfig

__all__ = ["WandbTracker"]


class WandbTracker:
    def __init__(self, cfg: TrackingConfig, *, study: str, trial: int, config: dict[str, Any], study_dir: Path):
        import wandb

        if cfg.mode == "offline":
            os.environ.setdefault("WANDB_MODE", "offline")  # never prompt for a login
        study_dir.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            group=study,
            job_type="trial",
            name=f"{study}/trial-{trial}",
            config=config,
            dir=str(study_dir),
            mode=cfg.mode,
            reinit="create_new",
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True, save_code=False),
        )
        self.run_dir = str(Path(self._run.dir).parent) if cfg.mode == "offline" else self._run.url

    def log(self, row: dict[str, Any], *, step: int) -> None:
        self._run.log({k: v for k, v in row.items() if k != "step"}, step=step)

    def finish(self, *, summary: dict[str, Any], status: str) -> None:
        self._run.summary.update({**summary, "status": status})
        self._run.finish(exit_code=0 if status in ("complete", "pruned") else 1)
