"""Launchers: who runs a study's workers, chosen by ``launcher.backend`` from ``LAUNCHERS`` (one file
per implementation, the interface in ``_base``): ``local`` (processes on this machine) or ``slurm``
(a SLURM job array through submitit, imported only when a slurm launch starts)."""

from __future__ import annotations

from harness.launch import local, slurm
from harness.launch._base import Launcher, LauncherBackend, LauncherConfig, LaunchOutcome, WorkerJob

__all__ = ["LAUNCHERS", "LaunchOutcome", "Launcher", "LauncherBackend", "LauncherConfig", "WorkerJob", "get_launcher"]

# The registry. A new launcher is a file plus one entry here (and a case in tests/harness/test_launch_contract.py).
LAUNCHERS: dict[str, LauncherBackend] = {
    b.name: b
    for b in (
        LauncherBackend("local", local.LocalLauncher,
                        summary="worker processes on this machine (one in this process when n_workers=1)"),
        LauncherBackend("slurm", slurm.SlurmLauncher,
                        summary="one SLURM job array of n_workers tasks through submitit; needs storage=postgres"),
    )
}  # fmt: skip


def get_launcher(name: str) -> Launcher:
    from harness.errors import ConfigError

    if name not in LAUNCHERS:
        raise ConfigError("launcher.backend", name, f"expected one of {sorted(LAUNCHERS)}")
    return LAUNCHERS[name].open()
