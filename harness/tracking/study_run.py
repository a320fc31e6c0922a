"""The study run: one W&B run per study (``job_type="study"``, in the study's group beside its
trial runs) holding what only the whole study has: the leaderboard as a table, the report's
plots as interactive Plotly panels, and the HTML report itself.

Like the trial runs it only mirrors records (``reports`` builds the leaderboard, figures and
report from them). It is best effort: a W&B failure is one warning line on stderr, never an
exception into the sweep, whose results are already on disk.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from harness.tracking._base import TrackingConfig
from harness.tracking.wandb_tracker import _settings, _table, wait_written

__all__ = ["log_study"]


def log_study(cfg: TrackingConfig, *, study: str, study_dir: Path, columns: list[str], rows: list[dict[str, Any]],
              figures: dict[str, dict[str, Any]], report: Path | None, summary: dict[str, Any]) -> str | None:
    """Log the study run: ``leaderboard`` (one row per trial, ``columns`` in order), ``plots/<name>``
    for each Plotly figure dict, ``report`` (the HTML page, also saved as a run file) and ``summary``.

    Returns the offline run folder (the run URL online); None when tracking is off or W&B failed."""
    if cfg.backend != "wandb" or cfg.mode == "disabled":
        return None
    try:
        return _log_study(cfg, study=study, study_dir=study_dir, columns=columns, rows=rows, figures=figures,
                          report=report, summary=summary)
    except Exception as e:  # the study's records are the truth; a mirror that failed must not fail the sweep
        _warn(e)
        return None


def _log_study(cfg: TrackingConfig, *, study: str, study_dir: Path, columns: list[str], rows: list[dict[str, Any]],
               figures: dict[str, dict[str, Any]], report: Path | None, summary: dict[str, Any]) -> str | None:
    import wandb

    if cfg.mode == "offline":
        os.environ.setdefault("WANDB_MODE", "offline")  # never prompt for a login
    study_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=cfg.project, entity=cfg.entity, group=study, job_type="study", name=f"{study}/study",
                     dir=str(study_dir), mode=cfg.mode, reinit="create_new", settings=_settings(wandb))
    ok = False
    try:
        table, dropped = _table(wandb, columns=columns, rows=[[row.get(c) for c in columns] for row in rows])
        media: dict[str, Any] = {"leaderboard": table, **_plots(wandb, figures)}
        if report is not None:
            # inject=False: the page as written (no stylesheet fetched from wandb.ai);
            # data_is_not_path: the text is the page, never a file name.
            media["report"] = wandb.Html(report.read_text(encoding="utf-8"), inject=False, data_is_not_path=True)
            _save_report(run, report)
        run.log(media)  # one step: the study run has no time axis
        run.summary.update({**summary, **({"leaderboard/rows_dropped": dropped} if dropped else {})})
        ok = True
    finally:
        run.finish(exit_code=0 if ok else 1)
    if cfg.mode != "offline":
        return run.url
    wait_written(Path(run.dir).parent)  # the folder we return is complete
    return str(Path(run.dir).parent)


def _plots(wandb: Any, figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``plots/<name>`` -> wandb.Plotly for each figure W&B can take; the others are skipped with a
    warning (an HTML fallback would need plotly.js from a CDN, which our machines cannot reach)."""
    out = {}
    for name, fig in figures.items():
        try:
            import plotly.graph_objects as go

            out[f"plots/{name}"] = wandb.Plotly(go.Figure(fig))  # go.Figure validates the dict
        except Exception as e:
            _warn(e, what=f"plot {name!r} skipped")
    return out


def _save_report(run: Any, report: Path) -> None:
    # A copy inside the run folder, not wandb's default symlink to it: the run keeps the report as
    # it was when logged, even if the study is re-reported or moved before `wandb sync`.
    dest = Path(run.dir) / "report" / report.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(report, dest)
    run.save(str(dest), base_path=run.dir, policy="now")


def _warn(e: Exception, *, what: str = "failed") -> None:
    first = (str(e).strip().splitlines() or [""])[0][:300]
    print(f"warning: W&B study run: {what}: {type(e).__name__}: {first}", file=sys.stderr)
