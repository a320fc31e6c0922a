"""The one place where untrusted (model-generated) code runs.

WARNING: everything that executes generated programs goes through this package.
Nothing else in the project may ``exec`` a completion.

Interface (``_base``): a batch of :class:`Program` in, one typed :class:`Verdict` per program
out, in the same order. Backends plug in through :data:`BACKENDS`, one file each:

- ``docker``: a locked-down long-lived container per batch (the default where a daemon answers);
- ``process``: the same worker on the host; weaker isolation, and every verdict says so.

Infrastructure failures (no daemon, no image, worker death) raise :class:`SandboxError`;
they are never turned into failed verdicts. Every backend passes the hostile-program contract
(tests/evaluators/test_sandbox_contract.py), run against each entry of the registry.
"""

from __future__ import annotations

import warnings
from typing import Any

from evaluators.sandbox import docker_backend, process
from evaluators.sandbox._base import (
    STATUSES,
    Program,
    Sandbox,
    SandboxBackend,
    SandboxError,
    Status,
    Verdict,
)

__all__ = [
    "BACKENDS",
    "Program",
    "Sandbox",
    "SandboxBackend",
    "STATUSES",
    "SandboxError",
    "Status",
    "Verdict",
    "open_sandbox",
]

# The registry, strongest isolation first. A new backend is a file plus one entry here (and a case in the
# contract test). Opening one imports its library (docker) only then.
BACKENDS: dict[str, SandboxBackend] = {
    b.name: b
    for b in (
        SandboxBackend("docker", docker_backend.DockerSandbox, unavailable=docker_backend.unavailable,
                       summary="a locked-down container per batch, the worker as PID 1"),
        SandboxBackend("process", process.ProcessSandbox,
                       summary="the same worker on this host: WEAK isolation, and every result says so"),
    )
}  # fmt: skip


def open_sandbox(kind: str = "auto", **options: Any) -> Sandbox:
    """Open a backend by name.

    ``auto`` = the first backend of the registry (strongest isolation first) that can run here: docker
    when a daemon answers and the sandbox image is built, else process, with a loud warning saying what
    is missing. An explicit name never falls back: ``docker`` without a daemon fails.
    """
    if kind == "auto":
        kind = _first_available()
    if kind not in BACKENDS:
        raise SandboxError(f"unknown sandbox backend {kind!r}; choose one of {sorted(BACKENDS)} or 'auto'")
    return BACKENDS[kind].open(**options)


def _first_available() -> str:
    """The name of the strongest backend that can run here; a warning names what each stronger one lacks."""
    missing: list[str] = []
    for backend in BACKENDS.values():
        reason = backend.unavailable()
        if reason is None:
            if missing:
                warnings.warn(f"eval.sandbox=auto: {'; '.join(missing)}; running generated code with the weaker "
                              f"'{backend.name}' sandbox on this host ({backend.summary}).", stacklevel=3)
            return backend.name
        missing.append(reason)
    raise SandboxError(f"eval.sandbox=auto: no sandbox backend can run here: {'; '.join(missing)}")
