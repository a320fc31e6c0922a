"""``launcher=slurm``: one SLURM job array of ``launcher.n_workers`` tasks through submitit.

Each array task runs ``harness.worker.worker_main(overrides)`` and pulls trials from the
study (so the storage must be one every node reaches: ``storage=postgres``; ``runs_dir`` must
be on a shared filesystem). submitit keeps its job files and the per-worker logs in
``<study>/slurm/``; those hold the command's overrides, never a credential (the database URL
reaches the tasks through the environment, which sbatch exports).

Signals: SLURM sends SIGUSR2 ahead of the time limit or on preemption (submitit's
``--signal=USR2@90``) and SIGTERM on ``scancel``; the worker records its running trial as
failed, re-enqueues it for the other tasks, and exits. A task killed without notice is found
by the heartbeat like any lost worker.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any

from harness.errors import ConfigError
from harness.launch._base import LaunchOutcome, WorkerJob

__all__ = ["SlurmLauncher", "executor_parameters"]


def executor_parameters(job: WorkerJob) -> dict[str, Any]:
    """submitit SlurmExecutor parameters from the ``launcher`` config."""
    lc = job.study.launcher
    params: dict[str, Any] = {
        "job_name": f"harness-{job.study.name}",
        "time": lc.time_min,
        "cpus_per_task": lc.cpus_per_task,
        "array_parallelism": lc.max_parallel or lc.n_workers,
        "stderr_to_stdout": True,
        "signal_delay_s": 90,
    }
    if lc.partition:
        params["partition"] = lc.partition
    if lc.mem_gb:
        params["mem"] = f"{int(lc.mem_gb * 1024)}M"
    if lc.gpus_per_task:
        params["gpus_per_task"] = lc.gpus_per_task
    if lc.setup:
        params["setup"] = list(lc.setup)
    if lc.sbatch:
        params["additional_parameters"] = dict(lc.sbatch)
    return params


class SlurmLauncher:
    name = "slurm"

    def launch(self, job: WorkerJob, *, progress: bool) -> LaunchOutcome:
        if shutil.which("sbatch") is None:
            raise ConfigError("launcher", "slurm", "sbatch is not on PATH (scripts/setup_slurm.sh starts a single-node cluster)")
        if job.study.storage.backend != "postgres":
            raise ConfigError("storage", job.study.storage.backend,
                              "launcher=slurm needs a storage every node reaches: storage=postgres")
        import submitit

        from harness.worker import worker_main

        folder = job.study.dir / "slurm"
        executor = submitit.SlurmExecutor(folder=str(folder))
        executor.update_parameters(**executor_parameters(job))
        n = job.study.launcher.n_workers
        jobs = executor.map_array(worker_main, [list(job.overrides)] * n)
        array_id = jobs[0].job_id.split("_")[0]
        print(f"submitted SLURM job array {array_id} ({n} workers); logs in {folder}/", flush=True)
        if not job.study.launcher.wait:
            return LaunchOutcome(detached=True, where=f"SLURM job array {array_id} (squeue -j {array_id}); logs in {folder}/")
        try:
            self._follow(job, jobs)
        except KeyboardInterrupt:
            print(f"\ncancelling SLURM job array {array_id}", file=sys.stderr, flush=True)
            for j in jobs:
                j.cancel(check=False)
            raise
        return LaunchOutcome()

    def _follow(self, job: WorkerJob, jobs) -> None:
        """Wait for the array, printing one line per trial as the storage reports it finished."""
        from harness.status import trial_line
        from harness.study import open_study, storage_call

        study, _ = open_study(job.study)
        seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
        array_id = jobs[0].job_id.split("_")[0]
        empty_polls = 0
        while True:
            # submitit cannot tell a task killed without a result (no accounting: no sacct) from one
            # still running, so the queue decides: the array is over when squeue no longer lists it
            empty_polls = empty_polls + 1 if not _in_queue(array_id) else 0
            done = all(j.paths.result_pickle.exists() for j in jobs) or empty_polls >= 2
            for t in storage_call(study.get_trials, deepcopy=False, what="following the study"):
                if t.number in seen or not t.state.is_finished() or t.user_attrs.get("discarded"):
                    continue
                seen.add(t.number)
                print(trial_line(job.study.dir, t), flush=True)
            if done:
                return
            time.sleep(2.0)


def _in_queue(array_id: str) -> bool:
    import subprocess

    try:
        out = subprocess.run(["squeue", "-h", "-j", array_id, "-o", "%i"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return True  # cannot tell: keep waiting
    if out.returncode != 0:
        return "Invalid job id" not in out.stderr  # an array that left the queue is unknown to squeue
    return bool(out.stdout.strip())
