"""Self-test of a sandbox backend: does it pass what must pass and contain what must fail?

Used by ``python -m evaluators.sandbox check``; prints one line per probe and returns
True when every probe behaved.
"""

from __future__ import annotations

from evaluators.sandbox import Program, open_sandbox

__all__ = ["PROBES", "self_check"]

# (id, source, the status we require)
PROBES: tuple[tuple[str, str, str], ...] = (
    ("canonical: add", "def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\n", "passed"),
    ("canonical: sort", "def f(xs):\n    return sorted(xs)\n\nassert f([3, 1, 2]) == [1, 2, 3]\n", "passed"),
    ("known-bad: wrong answer", "def add(a, b):\n    return a - b\n\nassert add(2, 3) == 5\n", "failed"),
    ("known-bad: early exit 0", "import os\nos._exit(0)\nassert False\n", "failed"),
    ("network: TCP connect to 1.1.1.1:53",
     "import socket\ns = socket.create_connection(('1.1.1.1', 53), timeout=2)\n", "error"),
    ("network: DNS lookup", "import socket\nsocket.getaddrinfo('example.com', 80)\n", "error"),
    ("timeout: infinite loop", "while True:\n    pass\n", "timeout"),
)


def self_check(kind: str = "auto", *, log=print) -> bool:
    ok = True
    with open_sandbox(kind, workers=2) as sb:
        log(f"backend: {sb.name}")
        log(f"image: {sb.image}")
        log(f"isolation: {sb.isolation}")
        programs = [Program(id=name, source=src, timeout_s=2.0) for name, src, _ in PROBES]
        for (name, _, want), v in zip(PROBES, sb.run(programs), strict=True):
            good = v.status == want
            ok &= good
            log(f"  {'ok  ' if good else 'FAIL'} {name}: {v.status} (want {want}) {v.detail[:100]}")
    log("self-check passed" if ok else "self-check FAILED")
    return ok
