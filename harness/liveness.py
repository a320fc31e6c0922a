"""Liveness: a running trial's worker beats; a trial whose worker stopped beating is lost.

A lost trial (worker SIGKILLed, OOM-killed, node gone, ``scancel``, preempted without notice)
is, exactly once, by whichever live worker looks first:

1. failed in Optuna;
2. failed in its record (``worker lost: no heartbeat for more than <grace> s``);
3. cleaned up: its sandbox containers on this host, its W&B run (finished as failed);
4. retried: its parameters are enqueued with ``retry_of`` / ``retry_attempt``, up to
   ``study.max_retries`` times.

RDB storages (SQLite, PostgreSQL) use Optuna's heartbeat table and ``fail_stale_trials``,
whose state change is atomic, so one worker wins each lost trial. Optuna's journal storage has
no heartbeat: workers keep a lease in a trial system attribute instead, and reap under an
exclusive lock on a file next to the journal.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from harness.study_config import StudyConfig

__all__ = ["Heartbeat", "Reaper", "worker_identity", "pid_alive"]

LEASE_ATTR = "harness:heartbeat"  # journal storage: the last beat (unix time) of a running trial
WORKER_ATTR = "worker"  # user attribute: where a trial runs


def worker_identity() -> dict[str, Any]:
    """Where this worker runs: host, pid, and the SLURM task when there is one."""
    ident: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    if os.environ.get("SLURM_JOB_ID"):
        array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        ident["slurm_job"] = f"{array}_{task}" if array and task else os.environ["SLURM_JOB_ID"]
    return ident


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def uses_optuna_heartbeat(storage) -> bool:
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

    return isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage)


class Heartbeat:
    """A thread that beats for one running trial every ``interval`` seconds. Storage errors are
    counted, not raised: a database restart must not kill the trial (the next beat reconnects)."""

    def __init__(self, storage, trial_id: int, interval: float):
        self._storage, self._trial_id, self._interval = storage, trial_id, interval
        self._optuna = uses_optuna_heartbeat(storage)
        self._stop = threading.Event()
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}", daemon=True)

    def beat(self) -> None:
        if self._optuna:
            self._storage.record_heartbeat(self._trial_id)
        else:
            self._storage.set_trial_system_attr(self._trial_id, LEASE_ATTR, time.time())

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - e.g. the database restarting; the next beat retries
                self.errors += 1

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Reaper:
    """Finds lost trials of one study and settles them (see the module docstring)."""

    def __init__(self, cfg: StudyConfig, study):
        self.cfg, self.study = cfg, study
        self.reaped: list[int] = []

    # -- detection ------------------------------------------------------------------------

    def reap(self) -> list[int]:
        """Fail and settle every lost trial; returns their numbers."""
        from harness import study as study_module

        before = len(self.reaped)
        if time.time() - study_module.LAST_OUTAGE_END < self.cfg.grace_s:
            # this worker just got the storage back: the others' beats may not have resumed yet,
            # and their trials would look lost although their workers are alive
            return []
        if uses_optuna_heartbeat(self.study._storage):
            import warnings

            import optuna

            # the storage's stale-trial callback (self.on_stale) settles each trial this worker fails
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)
        elif self.cfg.storage.backend == "journal":
            self._reap_journal()
        return self.reaped[before:]

    def on_stale(self, study, frozen) -> None:
        """Optuna's heartbeat_stale_trial_callback: ``frozen`` was just failed by this worker."""
        self.settle(frozen, f"worker lost: no heartbeat for more than {self.cfg.grace_s} s{_where(frozen)}")

    @contextmanager
    def _journal_lock(self):
        from harness.study import storage_url

        with open(storage_url(self.cfg) + ".reaper.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _reap_journal(self) -> None:
        from optuna.trial import TrialState

        now = time.time()
        with self._journal_lock():  # one reaper at a time: the state change below is then exclusive
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                last = t.system_attrs.get(LEASE_ATTR)
                if last is None and t.datetime_start is not None:
                    last = t.datetime_start.timestamp()
                if last is None or now - last <= self.cfg.grace_s:
                    continue
                self.study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
                since = datetime.fromtimestamp(last, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
                self.settle(t, f"worker lost: no heartbeat since {since} (grace {self.cfg.grace_s} s){_where(t)}")

    def fail_orphans(self, reason: str, *, retry: bool) -> list[int]:
        """Every trial still RUNNING when no worker of this study is left is lost. Called by the
        launcher once all its workers have exited (their trials cannot be running any more)."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        lost = []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            try:
                self.study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
            except UpdateFinishedTrialError:
                continue
            self.settle(t, reason + _where(t), retry=retry)
            lost.append(t.number)
        return lost

    # -- settling -------------------------------------------------------------------------

    def settle(self, frozen, reason: str, *, retry: bool = True) -> None:
        """Record, clean up and retry one trial that this worker has just failed in Optuna."""
        from harness.record import mark_record

        number = frozen.number
        trial_dir = self.cfg.dir / f"trial-{number}"
        attempt = int(frozen.user_attrs.get("retry_attempt", 0))
        retried = retry and attempt < self.cfg.max_retries and not self._study_done()
        facts: dict[str, Any] = {"lost_worker": frozen.user_attrs.get(WORKER_ATTR)}
        if frozen.user_attrs.get("retry_of") is not None:
            facts["retry_of"] = frozen.user_attrs["retry_of"]
        note = ""
        if retry and not retried and attempt >= self.cfg.max_retries:
            note = f" (not retried: study.max_retries={self.cfg.max_retries} reached)"
        mark_record(trial_dir, study=self.cfg.name, number=number, status="failed", reason=reason + note, **facts)
        self.reap_containers(trial=number)
        self._finish_tracker_run(trial_dir, number, reason)
        if retried:
            self.study.enqueue_trial(
                dict(frozen.params),
                user_attrs={"retry_of": number, "retry_attempt": attempt + 1, "config_key": frozen.user_attrs.get("config_key")},
                skip_if_exists=False,
            )
        self.reaped.append(number)
        print(f"[trial {number}] LOST      {reason}{'; retrying it' if retried else ''}", flush=True)

    def _study_done(self) -> bool:
        from optuna.trial import TrialState

        return len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) >= self.cfg.n_trials

    def reap_containers(self, *, trial: int | None = None) -> int:
        """Remove this study's sandbox containers whose worker (on this host) is gone."""
        from evaluators.sandbox.docker_backend import reap_containers

        host = socket.gethostname()
        match = {"harness.study": self.cfg.name}
        if trial is not None:
            match["harness.trial"] = str(trial)

        def keep(labels: dict[str, str]) -> bool:
            if labels.get("harness.host") != host:
                return True  # another machine's: only its own workers can tell
            try:
                return pid_alive(int(labels.get("harness.pid", "0")))
            except ValueError:
                return False

        return reap_containers(match, keep=keep)

    def _finish_tracker_run(self, trial_dir, number: int, reason: str) -> None:
        from harness.config import GROUPS
        from harness.record import read_json
        from harness.tracking import finish_lost_run

        try:
            run_id = read_json(trial_dir / "manifest.json").get("tracking_run_id")
            if not run_id:
                return
            import yaml

            resolved = yaml.safe_load((trial_dir / "config.yaml").read_text())
            tracking = GROUPS["tracking"].config(resolved)
            finish_lost_run(tracking, run_id=run_id, study=self.cfg.name, trial=number, study_dir=self.cfg.dir, reason=reason)
        except Exception as e:  # noqa: BLE001 - the record is settled; a tracker outage must not stop the reaper
            print(f"[trial {number}] note: could not finish its tracker run ({type(e).__name__}: {e})", flush=True)


def _where(frozen) -> str:
    w = frozen.user_attrs.get(WORKER_ATTR) or {}
    if not w:
        return ""
    where = f"{w.get('host')} pid {w.get('pid')}"
    if w.get("slurm_job"):
        where += f", SLURM job {w['slurm_job']}"
    return f" (worker {where})"
