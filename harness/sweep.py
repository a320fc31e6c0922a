"""``python -m harness.sweep +sweep=<name> [overrides]``: run (or resume) a study.

1. Hydra composes the root config; the study part and one trial config per search-space
   choice are validated before anything is built (a bad value fails in about a second).
2. The Optuna study is opened (created or resumed) on the configured storage.
3. Workers (this process, or ``launcher.n_workers`` local processes) loop: ask -> compose
   the trial's config (base overrides + sampled overrides) -> ``harness.trial.run_trial``
   -> tell, until ``study.n_trials`` trials are complete (pruned and failed trials do not
   count; ``study.max_trials`` and ``study.max_failures`` bound a run).
4. The leaderboard is printed and written to ``<runs_dir>/<study>/leaderboard.{md,csv}``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from harness.config import StudyConfig, study_config, trial_config
from harness.errors import ConfigError, TrialFailed

__all__ = ["main", "run_sweep"]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
WORKER_ENV = "HARNESS_SWEEP_WORKER"  # set in the processes a local launcher starts


def _compose(overrides: list[str]) -> dict[str, Any]:
    """One trial's config: the root config with the command's overrides plus the sampled ones."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():  # inside @hydra.main
        cfg = compose(config_name="config", overrides=overrides)
    else:  # called as a library (tests, notebooks)
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def _base_values(raw: dict[str, Any], groups: set[str]) -> dict[str, Any]:
    """Values that `when` conditions may test: group option names and every dotted key."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            flat[prefix] = node

    walk("", raw)
    for g in groups:
        if isinstance(raw.get(g), dict):
            flat[g] = raw[g].get("name")
    return flat


def validate(raw: dict[str, Any], base_overrides: list[str]) -> StudyConfig:
    """Fail fast: the study, the base trial config, every categorical choice and both ends of every range."""
    from harness.study import config_groups, make_pruner, make_sampler, to_override
    from harness.trial import HEADLINE_METRICS

    study = study_config(raw)
    base = trial_config(raw)
    make_sampler(study)
    make_pruner(study)
    known = set(HEADLINE_METRICS) | {f"{b.name}/pass@{k}" for b in base.eval.benchmarks for k in base.eval.ks}
    for o in study.objectives:
        if o.metric not in known:
            raise ConfigError("study.objectives[].metric", o.metric, f"expected one of {sorted(known)}")
    groups = config_groups(CONF_DIR)
    for p in study.search_space:
        values = list(p.choices) if p.type == "categorical" else [p.low, p.high]
        if p.type == "int":
            values = [int(v) for v in values]
        # put the trial in a state where the parameter applies (its `when` groups chosen)
        context = [f"{k}={v[0]}" for k, v in p.when.items() if k in groups]
        for v in values:
            override = to_override(p.key, v, group=p.key in groups)
            try:
                trial_config(_compose(base_overrides + context + [override]))
            except ConfigError as e:
                raise ConfigError(e.key, e.value, f"{e.expected} (from search_space.{p.key} choice {v!r})") from None
            except Exception as e:  # Hydra: unknown group option or key
                raise ConfigError(f"search_space.{p.key}", v, f"cannot be applied: {e}") from None
    return study


def _quiet() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # CPU-kernel notices on import, harmless here
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("WANDB_SILENT", "true")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def _complete(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _enqueue_interrupted(study) -> int:
    """Re-run the configuration of each trial that was interrupted (SIGINT) and not retried yet."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    n = 0
    for t in trials:
        if t.state == TrialState.FAIL and t.user_attrs.get("interrupted") and t.number not in retried:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
            n += 1
    return n


def _trial_line(study_dir: Path, frozen) -> str:
    from optuna.trial import TrialState

    metrics_path = study_dir / f"trial-{frozen.number}" / "metrics.json"
    manifest_path = study_dir / f"trial-{frozen.number}" / "manifest.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    params = ", ".join(f"{k.split('.')[-1]}={_fmt(v)}" for k, v in frozen.params.items())
    wall = manifest.get("timings_s", {}).get("total")
    tail = f"  ({params})" if params else ""
    tail += f"  {wall:.1f} s" if wall else ""
    if frozen.state == TrialState.COMPLETE:
        shown = [f"{k}={_fmt(v)}" for k, v in metrics.items() if "pass@" in k or k == "eval_loss"]
        return f"[trial {frozen.number}] complete  {'  '.join(shown)}{tail}"
    if frozen.state == TrialState.PRUNED:
        return f"[trial {frozen.number}] pruned    {manifest.get('reason') or ''}{tail}"
    return f"[trial {frozen.number}] FAILED    {manifest.get('reason') or frozen.user_attrs.get('reason') or 'see error.txt'}{tail}"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if (abs(v) < 1e-2 and v != 0) else f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def run_worker(study_cfg: StudyConfig, base_overrides: list[str], raw: dict[str, Any], *, progress: bool) -> None:
    """Pull trials from the study until it has n_trials complete ones (or a bound is hit)."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    from harness.record import TrialRecord
    from harness.study import config_groups, make_pruner, make_sampler, make_storage, sample_params
    from harness.trial import Pruned, objective_values, run_trial

    directions = [o.direction for o in study_cfg.objectives]
    study = optuna.create_study(
        storage=make_storage(study_cfg),
        sampler=make_sampler(study_cfg),
        pruner=make_pruner(study_cfg),
        study_name=study_cfg.name,
        directions=directions,
        load_if_exists=True,
    )
    done = _complete(study)
    if done >= study_cfg.n_trials:
        print(f"study {study_cfg.name!r} already has {done} complete trials (n_trials={study_cfg.n_trials}); nothing to run")
        return
    if done:
        print(f"resuming study {study_cfg.name!r}: {done}/{study_cfg.n_trials} trials already complete")
    requeued = _enqueue_interrupted(study)
    if requeued:
        print(f"re-running {requeued} interrupted trial configuration(s)")
    groups = config_groups(CONF_DIR)
    base_values = _base_values(raw, groups)
    single = len(directions) == 1
    sign = -1.0 if directions[0] == "maximize" else 1.0  # the pruner compares eval loss in the study's direction
    failures = started = 0
    max_failures = study_cfg.max_failures if study_cfg.max_failures is not None else study_cfg.n_trials
    max_trials = study_cfg.max_trials if study_cfg.max_trials is not None else 3 * study_cfg.n_trials

    def objective(trial: optuna.Trial):
        params, overrides = sample_params(trial, study_cfg.search_space, base=base_values, groups=groups)
        trial.set_user_attr("overrides", overrides)
        trial_dir = study_cfg.dir / f"trial-{trial.number}"
        resolved = _compose(base_overrides + overrides)
        try:
            cfg = trial_config(resolved)
        except ConfigError as e:
            record = TrialRecord(trial_dir, study=study_cfg.name, number=trial.number, seed=int(resolved.get("seed", 0)))
            record.write_config(resolved)
            record.finish("failed", f"invalid trial config: {e}")
            raise TrialFailed(str(e)) from None

        def report(step: int, eval_loss: float) -> bool:
            if not single:
                return False
            trial.report(sign * eval_loss, step)
            return trial.should_prune()

        try:
            metrics = run_trial(
                cfg, resolved=resolved, study=study_cfg.name, number=trial.number, trial_dir=trial_dir,
                report=report, params=params, progress=progress,
            )
        except Pruned as e:
            raise optuna.TrialPruned(str(e)) from None
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except TrialFailed as e:
            trial.set_user_attr("reason", str(e)[:500])
            raise
        values = objective_values(metrics, study_cfg.objectives)
        return values[0] if single else values

    def after_trial(study: optuna.Study, frozen) -> None:
        nonlocal failures, started
        print(_trial_line(study_cfg.dir, frozen), flush=True)
        started += 1
        failures += frozen.state == TrialState.FAIL
        if failures >= max_failures:
            print(f"stopping: {failures} failed trials in this run (study.max_failures={max_failures})")
            study.stop()
        elif started >= max_trials:
            print(f"stopping: {started} trials in this run (study.max_trials={max_trials}) without reaching n_trials complete")
            study.stop()

    study.optimize(
        objective,
        catch=(TrialFailed,),
        callbacks=[after_trial, MaxTrialsCallback(study_cfg.n_trials, states=(TrialState.COMPLETE,))],
    )


def _write_study_file(study_cfg: StudyConfig, base_overrides: list[str]) -> None:
    from harness.record import write_json_atomic
    from harness.study import storage_url

    url = storage_url(study_cfg)
    if "@" in url and "://" in url:  # hide credentials
        scheme, rest = url.split("://", 1)
        url = f"{scheme}://***@{rest.split('@', 1)[1]}"
    write_json_atomic(
        study_cfg.dir / "study.json",
        {
            "name": study_cfg.name,
            "n_trials": study_cfg.n_trials,
            "objectives": [o.__dict__ for o in study_cfg.objectives],
            "search_space": [p.key for p in study_cfg.search_space],
            "sampler": study_cfg.sampler,
            "pruner": study_cfg.pruner,
            "storage": {"backend": study_cfg.storage.backend, "url": url},
            "overrides": base_overrides,
        },
    )


def _launch_local_workers(study_cfg: StudyConfig, base_overrides: list[str]) -> int:
    """Start launcher.n_workers processes of this same command; they share the study's storage."""
    env = {**os.environ, WORKER_ENV: "1"}
    procs = [
        subprocess.Popen([sys.executable, "-m", "harness.sweep", *base_overrides], env=env)
        for _ in range(study_cfg.launcher.n_workers)
    ]
    print(f"started {len(procs)} local workers (pids {', '.join(str(p.pid) for p in procs)})")
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.wait()
        raise
    return max(codes)


def run_sweep(raw: dict[str, Any], base_overrides: list[str]) -> int:
    """The whole command; returns the exit code."""
    try:
        study_cfg = validate(raw, base_overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    _quiet()
    is_worker = os.environ.get(WORKER_ENV) == "1"
    progress = sys.stderr.isatty() and not is_worker
    study_cfg.dir.mkdir(parents=True, exist_ok=True)
    if not is_worker:
        _write_study_file(study_cfg, base_overrides)
        print(f"study {study_cfg.name!r}: {study_cfg.n_trials} trials, records in {study_cfg.dir}/")
    started = time.time()
    code = 0
    try:
        if study_cfg.launcher.n_workers > 1 and not is_worker:
            code = _launch_local_workers(study_cfg, base_overrides)
        else:
            run_worker(study_cfg, base_overrides, raw, progress=progress)
    except KeyboardInterrupt:
        print("\ninterrupted: the running trial is recorded as failed; rerun the same command to resume", file=sys.stderr)
        return 130
    if is_worker:
        return code
    from reports.leaderboard import build_leaderboard

    board = build_leaderboard(study_cfg.dir)
    print(board.to_text())
    paths = board.write(study_cfg.dir)
    print(f"leaderboard: {', '.join(str(p) for p in paths)}   ({time.time() - started:.0f} s)")
    return code


@hydra.main(version_base=None, config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task)
    try:
        raw = OmegaConf.to_container(cfg, resolve=True)
    except Exception as e:  # an interpolation that does not resolve
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(run_sweep(raw, overrides))


if __name__ == "__main__":
    main()
