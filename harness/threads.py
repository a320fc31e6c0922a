"""How many torch CPU threads a trial or an evaluation uses when ``train.num_threads`` is unset.

The cores this process may run on (its CPU affinity: a SLURM allocation or a ``taskset``
narrows it), or ``SLURM_CPUS_PER_TASK`` where SLURM sets it, shared evenly by the local workers
of the study, at least one each. Intra-op threads that outnumber the free cores fight each other
and the sandbox: measured in docs/sweeps.md ("CPU threads").
"""

from __future__ import annotations

import os

__all__ = ["choose_threads"]


def choose_threads(requested: int | None, *, local_workers: int = 1) -> tuple[int, str]:
    """(threads, why) for ``train.num_threads=requested`` (None: the default above)."""
    if requested:
        return requested, "train.num_threads"
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        cores, where = int(slurm), "SLURM_CPUS_PER_TASK"
    else:
        cores, where = len(os.sched_getaffinity(0)), "cores this process may use"
    workers = max(1, local_workers)
    threads = max(1, cores // workers)
    return threads, f"{cores} {where} / {workers} local worker{'s' if workers > 1 else ''}"
