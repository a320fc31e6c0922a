"""The worker loop: ask -> claim -> run the trial (beating) -> tell, until the study is done.

Any number of workers (local processes, SLURM array tasks) run this loop against one study:

1. **Stop?** when ``study.n_trials`` trials are complete (counted in the storage, so across
   workers), when a worker flagged a failure every trial would share, or at this worker's own
   bounds (``study.max_failures`` / ``study.max_trials``).
2. **Reap.** Trials of lost workers are failed, recorded, cleaned up and re-enqueued
   (``harness.liveness``).
3. **Ask and claim.** ``study.ask()`` pops a waiting retry or creates a trial; the sampler is
   seeded per trial number (``harness.study.make_sampler``). The sampled configuration is
   claimed in the storage (``config_key``); a trial that finds the same configuration claimed
   by any other trial is discarded (told FAIL with ``discarded``, no record) and the worker
   asks again. Two workers claiming one configuration at once both see each other, so at most
   one of them runs it. Retries skip the claim: re-running is their point.
4. **Run** ``harness.trial.run_trial`` with a heartbeat thread; **tell** the result, retrying
   while the storage is unreachable (a database restart).

``python -m harness.worker <overrides>`` runs one worker (what the local launcher starts);
``worker_main(overrides)`` is the same for submitit.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import CONF_DIR, compose, study_config, trial_config
from harness.errors import ConfigError, TrialFailed
from harness.study_config import StudyConfig

__all__ = ["run_worker", "worker_main", "open_study", "storage_call", "trial_line", "STOP_ATTR"]

STOP_ATTR = "harness:stop"  # set by a worker that saw a failure every trial would share
MAX_COLLISIONS = 50  # consecutive duplicate samples before the search space counts as exhausted
_TRANSIENT_PATIENCE_S = 300
LAST_OUTAGE_END = 0.0  # when this process last got the storage back after losing it


class Preempted(KeyboardInterrupt):
    """SLURM asked this worker to stop (preemption or time limit): the trial is retried."""

    reason = "preempted: SLURM signalled the worker (preemption or time limit)"


@dataclass
class WorkerResult:
    ran: int = 0
    failed: int = 0
    stop_reason: str | None = None


# -- storage access that survives a database restart ------------------------------------------


def _transient(e: BaseException | None) -> bool:
    """A lost connection (server restarting, network blip), here or under Optuna's wrapping."""
    try:
        import sqlalchemy.exc as sa
    except ImportError:  # pragma: no cover - optuna depends on it
        return isinstance(e, OSError)
    seen = 0
    while e is not None and seen < 5:  # optuna re-raises as StorageInternalError from the SQLAlchemy error
        if isinstance(e, (sa.OperationalError, sa.InterfaceError)):
            return True
        if isinstance(e, sa.DBAPIError) and getattr(e, "connection_invalidated", False):
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def storage_call(fn: Callable[..., Any], *args: Any, what: str, patience: float = _TRANSIENT_PATIENCE_S, **kwargs: Any) -> Any:
    """Call ``fn``, retrying with backoff while the storage is unreachable (up to ``patience`` s)."""
    global LAST_OUTAGE_END
    deadline, delay, told = time.time() + patience, 0.5, False
    while True:
        try:
            value = fn(*args, **kwargs)
            if told:
                LAST_OUTAGE_END = time.time()
            return value
        except Exception as e:  # noqa: BLE001 - only transient storage errors are retried
            if not _transient(e) or time.time() > deadline:
                raise
            if not told:
                first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
                print(f"storage unreachable during {what} ({first}); retrying for up to {patience:.0f} s", file=sys.stderr, flush=True)
                told = True
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def open_study(cfg: StudyConfig, *, per_trial_seed: bool = True):
    """(optuna study, reaper) on the configured storage; the study is created when missing."""
    import optuna

    from harness.liveness import Reaper
    from harness.study import make_pruner, make_sampler, make_storage

    reaper = Reaper(cfg, None)
    storage = make_storage(cfg, on_stale=reaper.on_stale)
    study = storage_call(
        optuna.create_study,
        storage=storage, sampler=make_sampler(cfg, per_trial_seed=per_trial_seed), pruner=make_pruner(cfg),
        study_name=cfg.name, directions=[o.direction for o in cfg.objectives], load_if_exists=True,
        what="opening the study",
    )
    reaper.study = study
    return study, reaper


# -- one line per finished trial ----------------------------------------------------------------


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


# -- the loop -------------------------------------------------------------------------------------


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


def _duplicate_of(study, number: int, key: str) -> int | None:
    """The number of another trial that claimed configuration ``key`` (any state but discarded)."""
    for t in study.get_trials(deepcopy=False):
        if t.number != number and t.user_attrs.get("config_key") == key and not t.user_attrs.get("discarded"):
            return t.number
    return None


def _progress(study) -> tuple[int, list[int]]:
    """(complete trials, numbers of running trials in order); discarded trials do not count."""
    from optuna.trial import TrialState

    complete, running = 0, []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
        if t.user_attrs.get("discarded"):
            continue
        if t.state == TrialState.COMPLETE:
            complete += 1
        else:
            running.append(t.number)
    return complete, sorted(running)


def _systemic(e: BaseException) -> bool:
    """A failure every trial would share: the model or the data cannot be loaded, the sandbox is down."""
    from harness.errors import DataError

    cause = e.__cause__ or e.__context__ or e
    try:
        from evaluators.sandbox import SandboxError
    except ImportError:  # pragma: no cover
        SandboxError = ()  # type: ignore[assignment]
    return isinstance(cause, (DataError, OSError, ImportError, SandboxError))


def redacted_config(resolved: dict[str, Any]) -> dict[str, Any]:
    """The trial's config as it may be written: no storage credential (records, W&B)."""
    from harness.study import redact_url

    out = dict(resolved)
    if isinstance(out.get("storage"), dict):
        out["storage"] = {**out["storage"], "url": redact_url(out["storage"].get("url"))}
    return out


def run_worker(raw: dict[str, Any], base_overrides: list[str], *, progress: bool, runner: Callable[..., tuple] | None = None) -> WorkerResult:
    """Pull trials from the study until it is done or a bound is hit.

    ``runner(trial, **context) -> (state, values, reason, systemic)`` runs one trial; the default
    trains and evaluates (``_run_one``); the storage benchmark passes one that does nothing."""
    import warnings

    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    from harness.liveness import WORKER_ATTR, Heartbeat, worker_identity
    from harness.record import mark_record
    from harness.study import config_groups, params_key, sample_params

    warnings.filterwarnings("ignore", message=".*Heartbeat of storage is supposed to be used with Study.optimize.*")
    cfg = study_config(raw)
    study, reaper = open_study(cfg)
    storage = study._storage
    groups = config_groups(CONF_DIR)
    base_values = _base_values(raw, groups)
    single = len(cfg.objectives) == 1
    sign = _report_sign(cfg)
    max_failures = cfg.max_failures if cfg.max_failures is not None else cfg.n_trials
    max_trials = cfg.max_trials if cfg.max_trials is not None else 3 * cfg.n_trials
    me = worker_identity()
    labels = {"harness.study": cfg.name, "harness.host": me["host"], "harness.pid": str(me["pid"])}
    result = WorkerResult()
    collisions = 0
    reaper.reap_containers()

    while True:
        # 1. stop?
        complete, running = storage_call(_progress, study, what="counting trials")
        flagged = storage_call(lambda: study.user_attrs.get(STOP_ATTR), what="reading the study")
        if complete >= cfg.n_trials:
            break
        if flagged:
            result.stop_reason = flagged
            break
        if complete + len(running) >= cfg.n_trials:
            # enough trials are running to finish the study: wait for them (one may fail or be lost)
            storage_call(reaper.reap, what="looking for lost workers")
            time.sleep(min(2.0, cfg.heartbeat_s))
            continue
        if result.failed >= max_failures:
            result.stop_reason = f"{result.failed} failed trials in this worker (study.max_failures={max_failures})"
            break
        if result.ran >= max_trials:
            result.stop_reason = f"{result.ran} trials in this worker (study.max_trials={max_trials}) without reaching n_trials complete"
            break
        # 2. settle the trials of lost workers
        storage_call(reaper.reap, what="looking for lost workers")
        # 3. ask and claim
        trial = storage_call(study.ask, what="asking for a trial")
        with Heartbeat(storage, trial._trial_id, cfg.heartbeat_s):
            params, overrides = sample_params(trial, cfg.search_space, base=base_values, groups=groups)
            retry_of = trial.user_attrs.get("retry_of")
            storage_call(trial.set_user_attr, WORKER_ATTR, me, what="claiming the trial")
            storage_call(trial.set_user_attr, "overrides", overrides, what="claiming the trial")
            key = params_key(params)
            if retry_of is None:
                storage_call(trial.set_user_attr, "config_key", key, what="claiming the configuration")
                dup = storage_call(_duplicate_of, study, trial.number, key, what="checking the claim")
                if dup is not None:
                    storage_call(trial.set_user_attr, "discarded", f"duplicate of trial {dup}", what="discarding")
                    storage_call(study.tell, trial, state=TrialState.FAIL, skip_if_finished=True, what="discarding")
                    collisions += 1
                    if collisions >= MAX_COLLISIONS:
                        result.stop_reason = f"search space exhausted: {MAX_COLLISIONS} samples in a row repeated configurations already run"
                        storage_call(study.set_user_attr, STOP_ATTR, result.stop_reason, what="flagging the stop")
                        break
                    continue
            collisions = 0
            if retry_of is None:
                complete, running = storage_call(_progress, study, what="counting trials")
                if trial.number not in running[: max(0, cfg.n_trials - complete)]:
                    # another worker started the last needed trial at the same moment: leave it to them
                    storage_call(trial.set_user_attr, "discarded", "not needed: n_trials were already running", what="discarding")
                    storage_call(study.tell, trial, state=TrialState.FAIL, skip_if_finished=True, what="discarding")
                    continue
            result.ran += 1
            # 4. run and tell
            state, values, reason, systemic = (runner or _run_one)(
                trial, cfg=cfg, raw_overrides=base_overrides + overrides, params=params, single=single, sign=sign,
                progress=progress, labels={**labels, "harness.trial": str(trial.number)},
                facts={"worker": me, **({"retry_of": retry_of, "retry_attempt": trial.user_attrs.get("retry_attempt")} if retry_of is not None else {})},
            )
            try:
                if reason:
                    storage_call(trial.set_user_attr, "reason", reason[:500], what="recording the reason")
                if state == TrialState.COMPLETE:
                    storage_call(study.tell, trial, values[0] if single else values, skip_if_finished=True, what="telling the result")
                else:
                    storage_call(study.tell, trial, state=state, skip_if_finished=True, what="telling the result")
            except UpdateFinishedTrialError:
                pass  # finished already: by our own retried tell, or by a reaper (checked below)
            finished = storage_call(storage.get_trial, trial._trial_id, what="reading the trial")
            if finished.state != state:
                # another worker failed this trial as lost while it ran (beats delayed past the grace
                # period): Optuna's FAIL stands, and the record must say so. (A tell whose commit went
                # through before the connection dropped is retried, refused, and lands here agreeing.)
                mark_record(cfg.dir / f"trial-{trial.number}", study=cfg.name, number=trial.number, status="failed",
                            reason="worker lost: heartbeat delayed past study.grace_s; its result was discarded")
                state = finished.state
        print(trial_line(cfg.dir, finished), flush=True)
        if state == TrialState.FAIL:
            result.failed += 1
            if systemic:
                result.stop_reason = f"every trial would fail this way: {reason}"
                storage_call(study.set_user_attr, STOP_ATTR, result.stop_reason, what="flagging the stop")
                break
    return result


def _run_one(trial, *, cfg: StudyConfig, raw_overrides: list[str], params: dict[str, Any], single: bool, sign: float,
             progress: bool, labels: dict[str, str], facts: dict[str, Any]):
    """Run one trial; returns (state, values, reason, systemic). Interrupts are recorded, told and re-raised."""
    from optuna.trial import TrialState

    from harness.record import TrialRecord
    from harness.trial import Pruned, TrialRun, objective_values, run_trial

    trial_dir = cfg.dir / f"trial-{trial.number}"
    resolved = compose(raw_overrides)
    try:
        tcfg = trial_config(resolved)
    except ConfigError as e:
        record = TrialRecord(trial_dir, study=cfg.name, number=trial.number, seed=int(resolved.get("seed", 0)))
        record.write_config(redacted_config(resolved))
        record.finish("failed", f"invalid trial config: {e}")
        return TrialState.FAIL, None, f"invalid trial config: {e}", False

    def report(step: int, value: float) -> bool:
        if not single:
            return False
        storage_call(trial.report, sign * value, step, what=f"reporting {cfg.prune_on}")
        return storage_call(trial.should_prune, what="asking the pruner")

    try:
        local_workers = cfg.launcher.n_workers if cfg.launcher.backend == "local" else 1
        run = TrialRun(study=cfg.name, number=trial.number, dir=trial_dir, params=params or {}, report=report,
                       report_on=cfg.prune_on, progress=progress, sandbox_labels=labels or {}, record_facts=facts or {},
                       local_workers=local_workers)
        metrics = run_trial(tcfg, resolved=redacted_config(resolved), run=run)
        values = objective_values(metrics, cfg.selection_objectives)
    except Pruned as e:
        return TrialState.PRUNED, None, str(e), False
    except TrialFailed as e:
        if _PREEMPTED:  # the signal also reached the trial's helpers (a sandbox process) first
            from harness.record import mark_record

            mark_record(trial_dir, study=cfg.name, number=trial.number, status="failed", reason=Preempted.reason)
            _interrupted(trial, cfg, preempted=True)
            raise Preempted() from None
        return TrialState.FAIL, None, str(e), _systemic(e)
    except (KeyboardInterrupt, SystemExit) as e:
        # Ctrl-C or preemption: the record is closed by run_trial; Optuna learns it here, and the
        # configuration is re-run (next run for Ctrl-C, by any worker for a preemption)
        _interrupted(trial, cfg, preempted=isinstance(e, (Preempted, SystemExit)))
        raise
    return TrialState.COMPLETE, values, None, False


def _report_sign(cfg: StudyConfig) -> float:
    """Optuna's pruners compare intermediate values in the study's direction: the value reported is
    turned so that better in the study's direction is better for the watched metric. Eval loss is
    minimised (negated in a maximised study); the probe's pass@1 is maximised (negated in a
    minimised one). Multi-objective studies report nothing (Optuna cannot prune them)."""
    maximize = cfg.objectives[0].direction == "maximize"
    if cfg.prune_on == "probe":
        return 1.0 if maximize else -1.0
    return -1.0 if maximize else 1.0


def _interrupted(trial, cfg: StudyConfig, *, preempted: bool) -> None:
    from optuna.trial import TrialState

    try:
        storage_call(trial.set_user_attr, "interrupted", True, what="recording the interrupt", patience=30)
        storage_call(trial.study.tell, trial, state=TrialState.FAIL, skip_if_finished=True, what="recording the interrupt", patience=30)
        if preempted:
            attempt = int(trial.user_attrs.get("retry_attempt", 0))
            if attempt < cfg.max_retries:
                storage_call(trial.study.enqueue_trial, dict(trial.params), skip_if_exists=False, what="re-queueing", patience=30,
                             user_attrs={"retry_of": trial.number, "retry_attempt": attempt + 1, "config_key": trial.user_attrs.get("config_key")})
    except Exception as e:  # noqa: BLE001 - the trial stays RUNNING; the reaper settles it after the grace period
        print(f"[trial {trial.number}] could not record the interrupt in the storage ({e}); it will be reaped", file=sys.stderr)


# -- entry points -----------------------------------------------------------------------------


_PREEMPTED = False


def _on_preempt(signum, frame) -> None:
    global _PREEMPTED
    if _PREEMPTED:
        return  # already unwinding
    _PREEMPTED = True
    raise Preempted()


def worker_main(overrides: list[str]) -> int:
    """One worker: compose the config from the overrides (credentials come from the environment),
    run the loop, and return 0 (stopped normally) or 1 (stopped on a failure bound)."""
    from harness.sweep import quiet

    raw = compose(overrides)
    quiet()
    if os.environ.get("SLURM_JOB_ID"):
        # submitit's own handler would exit mid-trial and requeue the task; ours records the trial
        # as failed and retried first, then leaves (the other array tasks go on)
        signal.signal(signal.SIGUSR2, _on_preempt)
        signal.signal(signal.SIGTERM, _on_preempt)
    try:
        result = run_worker(raw, overrides, progress=False)
    except KeyboardInterrupt as e:
        print(f"worker {os.getpid()} stopped: {getattr(e, 'reason', 'interrupted')}", file=sys.stderr, flush=True)
        return 130
    if result.stop_reason:
        print(f"worker {os.getpid()} stopped: {result.stop_reason}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
