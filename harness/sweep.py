"""``python -m harness.sweep +sweep=<name> [overrides]``: run (or resume) a study.

1. **Validate.** Hydra composes the root config; the study, the base trial config and every
   search-space choice are validated before anything is built (exit 2 on a bad value).
2. **Pre-flight.** What would fail every trial identically (a missing or malformed data file,
   a model that is neither local, cached nor reachable) fails here, in seconds.
3. **Identity.** The Optuna study is opened (created or resumed) and its stored definition
   compared with this command's (``harness.identity``): the same name with another
   definition is refused, naming the keys that differ.
4. **Launch.** ``launcher=local`` or ``launcher=slurm`` (``harness.launch``) starts the
   workers (``harness.worker``), which pull trials until ``study.n_trials`` are complete.
5. **Settle and report.** Trials left running by workers that are gone are failed and
   recorded; the leaderboard is written; the exit code says what happened.

Exit codes: 0 ``study.n_trials`` trials complete (or detached: workers started); 1 the run
stopped without them (one summary line says why); 2 a config error; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections import Counter
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from harness.config import CONF_DIR, compose, study_config, trial_config
from harness.errors import ConfigError
from harness.study_config import StudyConfig

__all__ = ["main", "run_sweep", "validate", "quiet", "summarize"]


def validate(raw: dict[str, Any], base_overrides: list[str]) -> StudyConfig:
    """Fail fast: the study, the base trial config, every categorical choice and both ends of every range."""
    from evaluators.suites import LOCAL_SUITES, is_local
    from harness.study import config_groups, make_pruner, make_sampler, to_override
    from harness.trial import HEADLINE_METRICS

    _refuse_credentials(base_overrides)
    study = study_config(raw)
    base = trial_config(raw)
    make_sampler(study)
    make_pruner(study)
    known = set(HEADLINE_METRICS) | {f"{b.name}/pass@{k}" for b in base.eval.benchmarks for k in base.eval.ks}
    for suite in base.eval.suites:  # minimise forgetting, or maximise a suite's own score
        metric = LOCAL_SUITES[suite.name].metric if is_local(suite.name) else suite.metric
        known |= {f"forgetting/{suite.name}", *([f"{suite.name}/{metric}"] if metric else [])}
    if base.train.task_eval_steps:
        known.add("probe/pass@1")
    elif study.prune_on == "probe" or study.objective_split == "validation":
        key, value = ("study.prune_on", "probe") if study.prune_on == "probe" else ("study.objective_split", "validation")
        raise ConfigError(key, value, "needs the probe: set train.task_eval_steps (and train.probe; docs/probe.md)")
    for o in study.objectives:
        if o.metric not in known:
            raise ConfigError("study.objectives[].metric", o.metric, f"expected one of {sorted(known)}")
    groups = config_groups(CONF_DIR)
    for p in study.search_space:
        values: list[Any] = list(p.choices or ()) if p.type == "categorical" else [p.low, p.high]
        if p.type == "int":
            values = [int(v) for v in values]
        # put the trial in a state where the parameter applies (its `when` groups chosen)
        context = [f"{k}={v[0]}" for k, v in p.when.items() if k in groups]
        for v in values:
            override = to_override(p.key, v, group=p.key in groups)
            try:
                trial_config(compose(base_overrides + context + [override]))
            except ConfigError as e:
                raise ConfigError(e.key, e.value, f"{e.expected} (from search_space.{p.key} choice {v!r})") from None
            except Exception as e:  # Hydra: unknown group option or key
                raise ConfigError(f"search_space.{p.key}", v, f"cannot be applied: {e}") from None
    return study


def _refuse_credentials(overrides: list[str]) -> None:
    """A password on the command line would reach worker command lines, job files and logs."""
    from harness.study import redact_url

    for o in overrides:
        key, _, value = o.partition("=")
        if key.lstrip("+~") == "storage.url" and value and redact_url(value) != value:
            raise ConfigError("storage.url", redact_url(value),
                              "holds a password: put the URL in the environment instead (HARNESS_POSTGRES_URL, "
                              "or PGPASSWORD / ~/.pgpass), never on the command line")


def quiet() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # CPU-kernel notices on import, harmless here
    logging.getLogger("submitit").setLevel(logging.ERROR)  # "Bypassing sacct error" on clusters without accounting
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("WANDB_SILENT", "true")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*Heartbeat of storage is supposed to be used with Study.optimize.*")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def _enqueue_interrupted(study) -> int:
    """Re-run the configuration of each trial that was interrupted (Ctrl-C) and not retried yet."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    n = 0
    for t in trials:
        if t.state == TrialState.FAIL and t.user_attrs.get("interrupted") and t.number not in retried:
            attempt = int(t.user_attrs.get("retry_attempt", 0)) + 1
            study.enqueue_trial(t.params, skip_if_exists=False,
                                user_attrs={"retry_of": t.number, "retry_attempt": attempt, "config_key": t.user_attrs.get("config_key")})
            n += 1
    return n


def _group_overrides(overrides: list[str]) -> list[str]:
    """The overrides that choose config-group options (+sweep=..., model=...): a key's default
    under this command is its value in the root config composed with these alone."""
    from harness.study import config_groups

    groups = config_groups(CONF_DIR) | {"sweep"}
    return [o for o in overrides if o.partition("=")[0].lstrip("+~") in groups]


def _write_study_file(cfg: StudyConfig, base_overrides: list[str], study, fingerprint: str) -> None:
    from common.files import write_json_atomic
    from harness.identity import CHANGES_ATTR, DEFINITION_ATTR
    from harness.study import redact_url, storage_url

    attrs = study.user_attrs
    write_json_atomic(
        cfg.dir / "study.json",
        {
            "name": cfg.name,
            "fingerprint": fingerprint,
            "n_trials": cfg.n_trials,
            # what trials are selected (and ranked) on; with objective_split=validation a pass@k objective is
            # the validation probe's, and the configured (test) metric is reported beside it
            "objectives": [o.__dict__ for o in cfg.selection_objectives],
            "configured_objectives": [o.__dict__ for o in cfg.objectives],
            "objective_split": cfg.objective_split,
            "prune_on": cfg.prune_on,
            "search_space": [p.key for p in cfg.search_space],
            "search_space_spec": {p.key: {"type": p.type, "choices": list(p.choices) if p.choices is not None else None,
                                          "low": p.low, "high": p.high, "log": p.log} for p in cfg.search_space},
            "sampler": cfg.sampler,
            "pruner": cfg.pruner,
            "storage": {"backend": cfg.storage.backend, "url": redact_url(storage_url(cfg))},
            "overrides": base_overrides,
            "definition": attrs.get(DEFINITION_ATTR),
            "definition_changes": attrs.get(CHANGES_ATTR) or [],
        },
    )


def _check_runs_dir(cfg: StudyConfig, *, created: bool) -> None:
    """A study new to its storage must not write over the records of an earlier one."""
    from harness.record import read_json

    if not created:
        return
    trials = list(cfg.dir.glob("trial-*"))
    if trials:
        old_fp = read_json(cfg.dir / "study.json").get("fingerprint")
        raise ConfigError(
            "study.name", cfg.name,
            f"{cfg.dir}/ holds {len(trials)} trial record(s) of an earlier study "
            f"({'fingerprint ' + old_fp if old_fp else 'unknown definition'}) that this storage does not know; "
            f"move that folder away or choose another study.name",
        )


def _study_exists(cfg: StudyConfig) -> bool:
    from harness.study import make_storage

    if cfg.storage.backend != "postgres" and not cfg.storage.url and not any(cfg.dir.glob("optuna.*")):
        return False
    try:
        make_storage(cfg).get_study_id_from_name(cfg.name)
    except KeyError:
        return False
    return True


def summarize(cfg: StudyConfig, study) -> tuple[int, str]:
    """(exit code, one summary line) from the storage and the records."""
    from optuna.trial import TrialState

    from harness.record import read_json

    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("discarded")]
    states = Counter(t.state for t in trials)
    complete, pruned, failed = states[TrialState.COMPLETE], states[TrialState.PRUNED], states[TrialState.FAIL]
    waiting = states[TrialState.WAITING]
    reasons: Counter = Counter()
    for t in trials:
        if t.state != TrialState.FAIL:
            continue
        reason = read_json(cfg.dir / f"trial-{t.number}" / "manifest.json").get("reason")
        reasons[(reason or t.user_attrs.get("reason") or "unknown").split("\n")[0][:200]] += 1
    counts = f"{complete}/{cfg.n_trials} complete, {pruned} pruned, {failed} failed" + (f", {waiting} waiting" if waiting else "")
    if complete >= cfg.n_trials:
        return 0, f"study {cfg.name!r}: {counts}"
    common = ""
    if reasons:
        reason, k = reasons.most_common(1)[0]
        common = f"; most common failure ({k}x): {reason}"
    return 1, f"study {cfg.name!r} stopped without n_trials complete: {counts}{common}"


def run_sweep(raw: dict[str, Any], base_overrides: list[str]) -> int:
    """The whole command; returns the exit code: validate, open the study, run its workers, conclude."""
    from harness.launch import get_launcher
    from harness.study import STOP_ATTR, storage_call

    started = time.time()
    try:
        cfg = validate(raw, base_overrides)
        launcher = get_launcher(cfg.launcher.backend)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    quiet()
    cfg.dir.mkdir(parents=True, exist_ok=True)
    opened = _open_study(cfg, raw, base_overrides)
    if isinstance(opened, int):
        return opened
    study, reaper, ident = opened
    if ident.changed:
        print(f"note: study {cfg.name!r} continues with a changed definition ({', '.join(ident.changed)}); recorded in the study")
    _write_study_file(cfg, base_overrides, study, ident.fingerprint)
    if study.user_attrs.get(STOP_ATTR):
        storage_call(study.set_user_attr, STOP_ATTR, None, what="clearing the stop flag")
    summary_code, _ = summarize(cfg, study)
    if summary_code == 0:
        print(f"study {cfg.name!r} already has {cfg.n_trials} complete trials (n_trials={cfg.n_trials}); nothing to run")
    else:
        code = _run_workers(cfg, study, reaper, launcher=launcher, base_overrides=base_overrides)
        if code is not None:
            return code
    from reports.leaderboard import build_leaderboard

    board = build_leaderboard(cfg.dir)
    print(board.to_text())
    paths = board.write(cfg.dir)
    print(f"leaderboard: {', '.join(str(p) for p in paths)}   ({time.time() - started:.0f} s)")
    _write_report(cfg, raw)
    code, line = summarize(cfg, study)
    print(line, file=sys.stdout if code == 0 else sys.stderr)
    return code


def _open_study(cfg: StudyConfig, raw: dict[str, Any], base_overrides: list[str]) -> tuple[Any, Any, Any] | int:
    """(study, reaper, its identity), or the exit code of why it cannot be opened: an existing study must
    have this definition (checked before anything is created), then what would fail every trial fails
    here (preflight), and only then is the study opened or created with its definition."""
    from harness.identity import StudyMismatch, adopt_definition, definition
    from harness.preflight import PreflightFailed, preflight
    from harness.study import open_study, redact_url

    current = definition(raw)
    defaults = definition(compose(_group_overrides(base_overrides)))
    try:
        if _study_exists(cfg):
            study, reaper = open_study(cfg, per_trial_seed=False)
            adopt_definition(study, name=cfg.name, current=current, defaults=defaults, allow_changed=cfg.allow_changed)
        preflight(raw)
        study, reaper = open_study(cfg, per_trial_seed=False)
        ident = adopt_definition(study, name=cfg.name, current=current, defaults=defaults, allow_changed=cfg.allow_changed)
        _check_runs_dir(cfg, created=ident.created)
    except (StudyMismatch, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except PreflightFailed as e:
        print(f"error: {e} (no trial was started)", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - the storage cannot be reached or opened: one line, not a traceback
        hint = ("; is the server up and HARNESS_POSTGRES_URL right? (scripts/setup_postgres.sh starts a local one)"
                if cfg.storage.backend == "postgres" else "")
        print(f"error: cannot open the study's storage ({cfg.storage.backend}): {redact_url(str(e).splitlines()[0])}{hint}",
              file=sys.stderr)
        return 1
    return study, reaper, ident


def _run_workers(cfg: StudyConfig, study: Any, reaper: Any, *, launcher: Any, base_overrides: list[str]) -> int | None:
    """Launch the workers and wait for them; then settle trials whose worker is gone. Returns an exit code
    when the command ends here (interrupted, a config error, workers left running detached), else None."""
    from harness.launch import WorkerJob
    from harness.study import storage_call

    done = sum(1 for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE")
    print(f"study {cfg.name!r}: {cfg.n_trials} trials, records in {cfg.dir}/" + (f" (resuming: {done} already complete)" if done else ""))
    requeued = _enqueue_interrupted(study)
    if requeued:
        print(f"re-running {requeued} interrupted trial configuration(s)")
    try:
        outcome = launcher.launch(WorkerJob(study=cfg, overrides=tuple(base_overrides)), progress=sys.stderr.isatty())
    except KeyboardInterrupt:
        print("\ninterrupted: the running trial is recorded as failed; rerun the same command to resume", file=sys.stderr)
        return 130
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if outcome.detached:
        print(f"workers are running detached ({outcome.where}); rerun the same command, or "
              f"`python -m harness.status` with the same overrides, to follow the study")
        return 0
    # every worker has exited: a trial still running has lost its worker
    lost = storage_call(reaper.fail_orphans, "worker lost: still running after every worker had exited", retry=True, what="settling")
    reaper.reap_containers()
    if lost:
        print(f"failed {len(lost)} trial(s) whose worker was gone: {lost}")
    return None


def _write_report(cfg: StudyConfig, raw: dict[str, Any]) -> None:
    """The study's HTML report, mirrored with the leaderboard and plots to the tracker's study run.
    A failure of either is reported, never fatal: the records stand and the exit code is the study's."""
    from harness.config import GROUPS
    from harness.tracking import log_study
    from reports.build import build_report

    try:
        report = build_report(cfg.dir)
    except Exception as e:  # noqa: BLE001 - the study's outcome must not depend on its report
        print(f"warning: the report could not be built ({type(e).__name__}: {e}); "
              f"retry with `python -m reports.build {cfg.dir}`", file=sys.stderr)
        return
    skipped = f", skipped {len(report.skipped)} record(s): see the page" if report.skipped else ""
    print(f"report: {report.path}   (open it in a browser; works offline{skipped})")
    ranked = [r for r in report.data["rows"] if r.get("rank") == 1]
    summary = {"objective": report.data["objective"], **{f"trials/{k}": v for k, v in report.data["counts"].items()},
               **({"best_trial": ranked[0]["trial"], "best_value": ranked[0].get(report.data["objective"])} if ranked else {})}
    plots = {k: v for k, v in report.figures.items() if k.startswith("pareto_") or k in ("importance", "history")}
    log_study(GROUPS["tracking"].config(raw), study=cfg.name, study_dir=cfg.dir,
              columns=report.data["columns"], rows=report.data["rows"], figures=plots, report=report.path, summary=summary)


@hydra.main(version_base=None, config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task)
    try:
        raw = OmegaConf.to_container(cfg, resolve=True)
    except Exception as e:  # an interpolation that does not resolve, a missing mandatory value
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(run_sweep(raw, overrides))


def check_overrides(args: list[str]) -> str | None:
    """Hydra's own errors (unknown group option, malformed override, unknown key) as one message,
    so they exit 2 like every other config error (Hydra itself exits 1, which reads as "failed")."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if any(a.startswith("-") for a in args):  # --help, --cfg job, ...: Hydra's own flags
        return None
    try:
        compose(args)
    except (HydraException, OmegaConfBaseException) as e:
        return str(e).strip()
    return None


if __name__ == "__main__":
    problem = check_overrides(sys.argv[1:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    main()
