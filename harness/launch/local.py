"""``launcher=local``: workers are processes on this machine.

One worker runs in this process (so a library caller sees its exceptions). Several run as
``python -m harness.worker <overrides>`` children sharing the study's storage. A child killed
from outside (SIGKILL, the OOM killer) is replaced while the study is not done, at most
``study.max_retries`` x ``n_workers`` times; its trial is settled by the reaper of a live
worker (or at the end, when no worker is left). ``launcher.wait=false`` starts the children
detached, logging to ``<study>/workers/``, and returns at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from harness.launch._base import LaunchOutcome, WorkerJob

__all__ = ["LocalLauncher"]


def _study_done(job: WorkerJob) -> bool:
    from optuna.trial import TrialState

    from harness.study import STOP_ATTR, open_study, storage_call

    study, _ = open_study(job.study)
    complete = storage_call(study.get_trials, deepcopy=False, states=(TrialState.COMPLETE,), what="counting trials")
    return len(complete) >= job.study.n_trials or bool(storage_call(lambda: study.user_attrs.get(STOP_ATTR), what="reading"))


class LocalLauncher:
    name = "local"

    def launch(self, job: WorkerJob, *, progress: bool) -> LaunchOutcome:
        n = job.study.launcher.n_workers
        if n == 1 and job.study.launcher.wait:
            from harness.config import compose
            from harness.worker import run_worker

            run_worker(compose(list(job.overrides)), list(job.overrides), progress=progress)
            return LaunchOutcome()
        if not job.study.launcher.wait:
            return self._detached(job)
        return self._supervise(job)

    def _command(self, job: WorkerJob) -> list[str]:
        return [sys.executable, "-m", "harness.worker", *job.overrides]

    def _detached(self, job: WorkerJob) -> LaunchOutcome:
        logs = job.study.dir / "workers"
        logs.mkdir(parents=True, exist_ok=True)
        pids = []
        for i in range(job.study.launcher.n_workers):
            with open(logs / f"worker-{i}.log", "ab") as log:
                p = subprocess.Popen(self._command(job), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
            pids.append(p.pid)
        print(f"started {len(pids)} detached local workers (pids {', '.join(map(str, pids))}); logs in {logs}/")
        return LaunchOutcome(detached=True, where=f"logs: {logs}/")

    def _supervise(self, job: WorkerJob) -> LaunchOutcome:
        n = job.study.launcher.n_workers
        procs = [subprocess.Popen(self._command(job)) for _ in range(n)]
        print(f"started {n} local workers (pids {', '.join(str(p.pid) for p in procs)})", flush=True)
        respawns_left = job.study.max_retries * n
        try:
            while procs:
                time.sleep(0.5)
                for p in list(procs):
                    code = p.poll()
                    if code is None:
                        continue
                    procs.remove(p)
                    if code < 0 and code != -signal.SIGINT:  # killed from outside
                        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
                        if respawns_left > 0 and not _study_done(job):
                            respawns_left -= 1
                            q = subprocess.Popen(self._command(job))
                            procs.append(q)
                            print(f"worker {p.pid} was killed ({name}); started worker {q.pid} in its place", flush=True)
                        else:
                            print(f"worker {p.pid} was killed ({name})", flush=True)
        except KeyboardInterrupt:
            for p in procs:  # they got the same SIGINT (one process group): let them record their trials
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)
            raise
        return LaunchOutcome()
