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
from typing import Any

from harness.config import CONF_DIR, compose, study_config, trial_config
from harness.errors import ConfigError, TrialFailed
from harness.status import trial_line
from harness.study import STOP_ATTR, open_study, storage_call
from harness.study_config import StudyConfig

__all__ = ["run_worker", "worker_main"]

MAX_COLLISIONS = 50  # consecutive duplicate samples before the search space counts as exhausted


class Preempted(KeyboardInterrupt):
    """SLURM asked this worker to stop (preemption or time limit): the trial is retried."""

    reason = "preempted: SLURM signalled the worker (preemption or time limit)"


@dataclass
class WorkerResult:
    ran: int = 0
    failed: int = 0
    stop_reason: str | None = None


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
    kinds: tuple[type[BaseException], ...] = (DataError, OSError, ImportError)
    try:
        from evaluators.sandbox import SandboxError

        kinds += (SandboxError,)
    except ImportError:  # pragma: no cover
        pass
    return isinstance(cause, kinds)


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

    warnings.filterwarnings("ignore", message=".*Heartbeat of storage is supposed to be used with Study.optimize.*")
    return _WorkerLoop(study_config(raw), raw, base_overrides, progress=progress, runner=runner or _run_one).run()


class _WorkerLoop:
    """One worker's loop: 1. stop? 2. settle lost workers' trials 3. ask and claim 4. run and tell.
    Every storage call goes through :func:`storage_call` (retried while the database is away)."""

    def __init__(self, cfg: StudyConfig, raw: dict[str, Any], base_overrides: list[str], *, progress: bool,
                 runner: Callable[..., tuple]) -> None:
        from harness.liveness import worker_identity
        from harness.study import config_groups

        self.cfg, self.base_overrides, self.progress, self.runner = cfg, base_overrides, progress, runner
        self.study, self.reaper = open_study(cfg)
        self.storage = self.study._storage
        self.groups = config_groups(CONF_DIR)
        self.base_values = _base_values(raw, self.groups)
        self.single = len(cfg.objectives) == 1
        self.sign = _report_sign(cfg)
        self.max_failures = cfg.max_failures if cfg.max_failures is not None else cfg.n_trials
        self.max_trials = cfg.max_trials if cfg.max_trials is not None else 3 * cfg.n_trials
        self.me = worker_identity()
        self.labels = {"harness.study": cfg.name, "harness.host": self.me["host"], "harness.pid": str(self.me["pid"])}
        self.result = WorkerResult()
        self.collisions = 0

    def run(self) -> WorkerResult:
        from optuna.trial import TrialState

        from harness.liveness import Heartbeat

        self.reaper.reap_containers()
        while True:
            go = self._go_on()  # 1. stop?
            if go is None:
                continue
            if not go:
                break
            storage_call(self.reaper.reap, what="looking for lost workers")  # 2. settle the trials of lost workers
            trial = storage_call(self.study.ask, what="asking for a trial")  # 3. ask and claim
            with Heartbeat(self.storage, trial._trial_id, self.cfg.heartbeat_s):
                claim = self._claim(trial)
                if claim is None:
                    if self.result.stop_reason:
                        break
                    continue
                params, overrides, retry_of = claim
                self.result.ran += 1
                # 4. run and tell
                facts = {"worker": self.me, **({"retry_of": retry_of, "retry_attempt": trial.user_attrs.get("retry_attempt")}
                                               if retry_of is not None else {})}
                state, values, reason, systemic = self.runner(
                    trial, cfg=self.cfg, raw_overrides=self.base_overrides + overrides, params=params, single=self.single,
                    sign=self.sign, progress=self.progress, labels={**self.labels, "harness.trial": str(trial.number)}, facts=facts,
                )
                state, finished = self._tell(trial, state, values, reason)
            print(trial_line(self.cfg.dir, finished), flush=True)
            if state == TrialState.FAIL:
                self.result.failed += 1
                if systemic:
                    self.result.stop_reason = f"every trial would fail this way: {reason}"
                    storage_call(self.study.set_user_attr, STOP_ATTR, self.result.stop_reason, what="flagging the stop")
                    break
        return self.result

    def _go_on(self) -> bool | None:
        """True: ask for a trial; False: stop (``result.stop_reason`` says why, unless the study is done);
        None: enough trials are running to finish the study, so wait for them (one may fail or be lost)."""
        cfg, result = self.cfg, self.result
        complete, running = storage_call(_progress, self.study, what="counting trials")
        flagged = storage_call(lambda: self.study.user_attrs.get(STOP_ATTR), what="reading the study")
        if complete >= cfg.n_trials:
            return False
        if flagged:
            result.stop_reason = flagged
            return False
        if complete + len(running) >= cfg.n_trials:
            storage_call(self.reaper.reap, what="looking for lost workers")
            time.sleep(min(2.0, cfg.heartbeat_s))
            return None
        if result.failed >= self.max_failures:
            result.stop_reason = f"{result.failed} failed trials in this worker (study.max_failures={self.max_failures})"
            return False
        if result.ran >= self.max_trials:
            result.stop_reason = f"{result.ran} trials in this worker (study.max_trials={self.max_trials}) without reaching n_trials complete"
            return False
        return True

    def _claim(self, trial) -> tuple[dict[str, Any], list[str], Any] | None:
        """Sample the trial's parameters and claim it: (params, overrides, retry_of), or None when it was
        discarded (a configuration already run, or not needed); ``result.stop_reason`` is set when the
        search space is exhausted."""
        from optuna.trial import TrialState

        from harness.liveness import WORKER_ATTR
        from harness.study import params_key, sample_params

        cfg, study = self.cfg, self.study
        params, overrides = sample_params(trial, cfg.search_space, base=self.base_values, groups=self.groups)
        retry_of = trial.user_attrs.get("retry_of")
        storage_call(trial.set_user_attr, WORKER_ATTR, self.me, what="claiming the trial")
        storage_call(trial.set_user_attr, "overrides", overrides, what="claiming the trial")
        if retry_of is not None:
            self.collisions = 0
            return params, overrides, retry_of
        key = params_key(params)
        storage_call(trial.set_user_attr, "config_key", key, what="claiming the configuration")
        dup = storage_call(_duplicate_of, study, trial.number, key, what="checking the claim")
        if dup is not None:
            storage_call(trial.set_user_attr, "discarded", f"duplicate of trial {dup}", what="discarding")
            storage_call(study.tell, trial, state=TrialState.FAIL, skip_if_finished=True, what="discarding")
            self.collisions += 1
            if self.collisions >= MAX_COLLISIONS:
                self.result.stop_reason = f"search space exhausted: {MAX_COLLISIONS} samples in a row repeated configurations already run"
                storage_call(study.set_user_attr, STOP_ATTR, self.result.stop_reason, what="flagging the stop")
            return None
        self.collisions = 0
        complete, running = storage_call(_progress, study, what="counting trials")
        if trial.number not in running[: max(0, cfg.n_trials - complete)]:
            # another worker started the last needed trial at the same moment: leave it to them
            storage_call(trial.set_user_attr, "discarded", "not needed: n_trials were already running", what="discarding")
            storage_call(study.tell, trial, state=TrialState.FAIL, skip_if_finished=True, what="discarding")
            return None
        return params, overrides, None

    def _tell(self, trial, state, values, reason: str | None):
        """Tell Optuna the trial's result; returns (the state that stands, the finished trial)."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        from harness.record import mark_record

        cfg, study = self.cfg, self.study
        try:
            if reason:
                storage_call(trial.set_user_attr, "reason", reason[:500], what="recording the reason")
            if state == TrialState.COMPLETE:
                storage_call(study.tell, trial, values[0] if self.single else values, skip_if_finished=True, what="telling the result")
            else:
                storage_call(study.tell, trial, state=state, skip_if_finished=True, what="telling the result")
        except UpdateFinishedTrialError:
            pass  # finished already: by our own retried tell, or by a reaper (checked below)
        finished = storage_call(self.storage.get_trial, trial._trial_id, what="reading the trial")
        if finished.state != state:
            # another worker failed this trial as lost while it ran (beats delayed past the grace
            # period): Optuna's FAIL stands, and the record must say so. (A tell whose commit went
            # through before the connection dropped is retried, refused, and lands here agreeing.)
            mark_record(cfg.dir / f"trial-{trial.number}", study=cfg.name, number=trial.number, status="failed",
                        reason="worker lost: heartbeat delayed past study.grace_s; its result was discarded")
            state = finished.state
        return state, finished


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
        run = TrialRun(study=cfg.name, number=trial.number, dir=trial_dir, params=params, report=report,
                       report_on=cfg.prune_on, progress=progress, sandbox_labels=labels, record_facts=facts,
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
