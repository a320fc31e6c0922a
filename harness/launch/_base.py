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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from harness.schema import check_one_of, check_positive

if TYPE_CHECKING:  # the study's schema holds a LauncherConfig: a runtime import would be circular
    from harness.study_config import StudyConfig

__all__ = ["LaunchOutcome", "Launcher", "LauncherBackend", "LauncherConfig", "WorkerJob"]


@dataclass(frozen=True)
class LauncherConfig:
    """``launcher`` group: who runs the workers (``harness.launch``). The SLURM keys are read by
    ``launcher=slurm`` only; each maps to one sbatch option (docs/cluster.md)."""

    backend: str = "local"  # an entry of harness.launch.LAUNCHERS
    n_workers: int = 1
    wait: bool = True  # false: submit and exit; rerun the command (or harness.status) to follow
    partition: str | None = None
    time_min: int = 60  # per worker (array task)
    mem_gb: float | None = None
    cpus_per_task: int = 1
    gpus_per_task: int = 0
    max_parallel: int | None = None  # array tasks running at once (None: all)
    sbatch: dict[str, Any] = field(default_factory=dict)  # extra sbatch options, e.g. {account: abc, qos: high}
    setup: tuple[str, ...] = ()  # shell lines run before each worker (module load, source venv)

    def __post_init__(self) -> None:
        from harness.launch import LAUNCHERS  # the registry is the list of names (imports no launcher)

        check_one_of("backend", self.backend, sorted(LAUNCHERS))
        check_positive("n_workers", self.n_workers)
        check_positive("time_min", self.time_min)
        check_positive("cpus_per_task", self.cpus_per_task)
        check_positive("gpus_per_task", self.gpus_per_task, allow_zero=True)


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
