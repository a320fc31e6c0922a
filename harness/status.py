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

__all__ = ["main", "status"]


def status(overrides: list[str]) -> int:
    from harness.config import compose, study_config
    from harness.errors import ConfigError
    from harness.sweep import _study_exists, quiet, summarize
    from harness.worker import open_study, trial_line

    from harness.sweep import check_overrides

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


if __name__ == "__main__":
    main()
