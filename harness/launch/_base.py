"""The launcher interface: start ``n_workers`` workers of one study, wait for them (or not).

A launcher only starts and watches processes. Workers find their work in the study's storage
(``harness.worker``); the entry point (``harness.sweep``) checks the study before and
summarises it after. Adding a launcher: one file here with a class like the ones in
``local.py`` and ``slurm.py``, one entry in ``harness.launch.LAUNCHERS``, a
``conf/launcher/<name>.yaml``, and a case in the contract test
(``tests/harness/test_launch_contract.py``), which must pass against it.

Nothing here imports a cluster library: submitit is imported inside ``SlurmLauncher.launch``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from harness.config import StudyConfig

__all__ = ["LaunchOutcome", "Launcher", "LauncherBackend", "WorkerJob"]


@dataclass(frozen=True)
class WorkerJob:
    """What every worker runs: ``harness.worker.worker_main(overrides)``. The overrides are the
    command's own (no credential ever: storage URLs come from the environment)."""

    study: StudyConfig
    overrides: tuple[str, ...]


@dataclass
class LaunchOutcome:
    """What the entry point needs: the study is summarised from the storage and the records,
    not from worker exit codes (a killed worker's trial is settled by the others)."""

    detached: bool = False  # the workers are still running; the caller must not summarise yet
    where: str = ""  # how to follow a detached study


class Launcher(Protocol):
    name: str

    def launch(self, job: WorkerJob, *, progress: bool) -> LaunchOutcome:
        """Start the workers; return when they have all exited (or at once when detached)."""
        ...


@dataclass(frozen=True)
class LauncherBackend:
    """One registry entry (``harness.launch.LAUNCHERS``), keyed by its ``launcher.backend`` name.

    ``open() -> Launcher`` makes the launcher (it reads everything else from the ``WorkerJob``)."""

    name: str
    open: Callable[[], Launcher]
    summary: str
