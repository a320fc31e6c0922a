"""``python -m harness.status +sweep=<name> [the sweep's overrides]``: where a study stands.

Reads the storage and the records only (starts nothing, changes nothing): trial counts by
state, the trials running now with their worker, and the leaderboard so far. Useful for a
study whose workers were started detached (``launcher.wait=false``) or run on a cluster.
Exit code: 0 when ``study.n_trials`` trials are complete, 3 while the study is unfinished,
2 on a config error or an unknown study.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "status", "trial_line"]


def status(overrides: list[str]) -> int:
    from harness.config import compose, study_config
    from harness.errors import ConfigError
    from harness.study import open_study
    from harness.sweep import _study_exists, check_overrides, quiet, summarize

    problem = check_overrides(overrides)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        cfg = study_config(compose(overrides))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    quiet()
    if not _study_exists(cfg):
        print(f"error: no study {cfg.name!r} in the {cfg.storage.backend} storage", file=sys.stderr)
        return 2
    study, _ = open_study(cfg, per_trial_seed=False)
    now = time.time()
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("discarded"):
            continue
        if t.state.is_finished():
            print(trial_line(cfg.dir, t))
        elif t.state.name == "RUNNING":
            w = t.user_attrs.get("worker") or {}
            since = f"{now - t.datetime_start.timestamp():.0f} s" if t.datetime_start else "?"
            print(f"[trial {t.number}] running   for {since} on {w.get('host', '?')} pid {w.get('pid', '?')}"
                  + (f" (SLURM {w['slurm_job']})" if w.get("slurm_job") else ""))
        else:
            print(f"[trial {t.number}] waiting   retry of trial {t.user_attrs.get('retry_of')}")
    code, line = summarize(cfg, study)
    print(line)
    return 0 if code == 0 else 3


def main() -> None:
    sys.exit(status(sys.argv[1:]))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if (abs(v) < 1e-2 and v != 0) else f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def trial_line(study_dir: Path, frozen) -> str:
    from optuna.trial import TrialState

    from harness.record import read_json

    metrics = read_json(study_dir / f"trial-{frozen.number}" / "metrics.json")
    manifest = read_json(study_dir / f"trial-{frozen.number}" / "manifest.json")
    params = ", ".join(f"{k.split('.')[-1]}={_fmt(v)}" for k, v in frozen.params.items())
    wall = manifest.get("timings_s", {}).get("total")
    tail = f"  ({params})" if params else ""
    tail += f"  {wall:.1f} s" if wall else ""
    if metrics.get("diagnosis"):
        tail += f"  curves: {metrics['diagnosis']}"
    if manifest.get("stop_reason") == "early_stopping":
        tail += "  (early-stopped)"
    if frozen.user_attrs.get("retry_of") is not None:
        tail += f"  retry of trial {frozen.user_attrs['retry_of']}"
    if frozen.state == TrialState.COMPLETE:
        shown = [f"{k}={_fmt(v)}" for k, v in metrics.items()
                 if "pass@" in k or k == "eval_loss" or (k.startswith("forgetting/") and not k.endswith(" 95% CI"))]
        return f"[trial {frozen.number}] complete  {'  '.join(shown)}{tail}"
    if frozen.state == TrialState.PRUNED:
        return f"[trial {frozen.number}] pruned    {manifest.get('reason') or ''}{tail}"
    return f"[trial {frozen.number}] FAILED    {manifest.get('reason') or frozen.user_attrs.get('reason') or 'see error.txt'}{tail}"


if __name__ == "__main__":
    main()
