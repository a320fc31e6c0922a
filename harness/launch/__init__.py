"""Launchers: who runs a study's workers. ``launcher=local`` (processes on this machine) or
``launcher=slurm`` (a SLURM job array through submitit). See ``_base`` for the interface."""

from __future__ import annotations

from harness.launch._base import LaunchOutcome, Launcher, LauncherConfig, WorkerJob

__all__ = ["LAUNCHERS", "LaunchOutcome", "Launcher", "LauncherConfig", "WorkerJob", "get_launcher"]


def _local():
    from harness.launch.local import LocalLauncher

    return LocalLauncher


def _slurm():
    from harness.launch.slurm import SlurmLauncher

    return SlurmLauncher


# name -> factory of the launcher class (imported lazily: submitit only for slurm)
LAUNCHERS = {"local": _local, "slurm": _slurm}


def get_launcher(name: str) -> Launcher:
    from harness.errors import ConfigError

    if name not in LAUNCHERS:
        raise ConfigError("launcher.backend", name, f"expected one of {sorted(LAUNCHERS)}")
    return LAUNCHERS[name]()()
