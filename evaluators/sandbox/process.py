"""The ``process`` backend: the sandbox worker run directly on this host.

WEAK isolation, and every result says so. What it still does: a clean environment (no
host variables), a private scratch directory removed on close, per-program rlimits,
process-group kills, output caps, a fresh network namespace when the kernel allows one,
and, when started as root, children that run as ``nobody``. What it cannot do without
Docker: hide the host's files (everything world-readable stays readable), cap total disk
use in scratch, or stop a program running as the same user from killing its worker
(the driver then re-runs the programs in flight alone and blames the one that kills it).
See docs/sandbox.md for the full table.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from evaluators.sandbox._base import Program, Verdict
from evaluators.sandbox._client import WorkerDriver

__all__ = ["ProcessSandbox", "WORKER_PATH"]

WORKER_PATH = Path(__file__).with_name("worker.py")


class _PipeChannel:
    def __init__(self, argv: list[str], cwd: str, stderr_path: str) -> None:
        self._stderr_path = stderr_path
        self._stderr = open(stderr_path, "wb")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=cwd,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},  # nothing from the host's env
            start_new_session=True,
            close_fds=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None  # both are pipes
        self._stdin, self._stdout = self.proc.stdin, self.proc.stdout
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._stdout, selectors.EVENT_READ)

    def send(self, data: bytes) -> None:
        self._stdin.write(data)
        self._stdin.flush()

    def recv(self, timeout: float) -> bytes | None:
        if not self._sel.select(timeout):
            return None
        return os.read(self._stdout.fileno(), 1 << 16)

    def diagnostics(self) -> str:
        code = self.proc.poll()
        try:
            tail = Path(self._stderr_path).read_text(errors="replace")[-1500:].strip()
        except OSError:
            tail = ""
        state = "still running" if code is None else f"exit code {code}"
        return f"worker {state}" + (f"; stderr: {tail}" if tail else "")

    def close(self) -> None:
        proc = self.proc
        try:
            self._stdin.close()  # EOF: the worker finishes what it has and exits
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
        self._sel.close()
        self._stdout.close()
        self._stderr.close()


def _world_readable(path: str) -> bool:
    """Every directory on the way to ``path`` is world-searchable and ``path`` is world-readable."""
    p = Path(path).resolve()
    try:
        if not p.stat().st_mode & stat.S_IROTH:
            return False
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in p.parents)
    except OSError:
        return False


def _pick_python(python: str | None, drop_root: bool) -> str:
    """The interpreter for the worker: ours, unless children must drop to nobody and could not read
    our stdlib (a Python under /root): then the system python3, if there is one that they can read."""
    if python:
        return python
    if drop_root and os.getuid() == 0 and not _world_readable(os.path.dirname(os.__file__)):
        system = shutil.which("python3", path="/usr/bin:/bin")
        if system:
            return system
    return sys.executable


class ProcessSandbox:
    """Run programs with the sandbox worker on this host (weaker isolation)."""

    name = "process"
    image = None

    def __init__(
        self,
        workers: int = 2,
        memory_mb: int = 1024,
        *,
        file_limit_mb: int = 16,
        output_limit_mb: int = 4,
        isolate_net: bool = True,
        drop_root: bool = True,
        python: str | None = None,
        **_: object,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._dir = tempfile.mkdtemp(prefix="sandbox-process-")
        self.run_dir = self._dir  # scratch, worker log; removed on close
        os.chmod(self._dir, 0o755)
        scratch = os.path.join(self._dir, "scratch")
        os.makedirs(scratch)
        os.chmod(scratch, 0o755)
        self.python = _pick_python(python, drop_root)
        argv = [self.python, "-I", "-S", str(WORKER_PATH), "--workers", str(workers),
                "--memory-mb", str(memory_mb), "--file-limit-mb", str(file_limit_mb),
                "--output-limit-mb", str(output_limit_mb), "--scratch", scratch]
        if isolate_net:
            argv.append("--isolate-net")
        if drop_root:
            argv.append("--drop-root")
        stderr_path = os.path.join(self._dir, "worker.stderr")
        self._driver = WorkerDriver(lambda: _PipeChannel(argv, scratch, stderr_path),
                                    workers=workers, recover=True, label="process")
        self._driver._open()  # fail now, not on the first batch
        hello = self._driver.hello
        parts = ["process: WEAK isolation (no container; host filesystem visible)",
                 "network namespace" if hello.get("net_isolated") else "host network",
                 "children run as nobody" if hello.get("drop_root") else
                 f"children run as uid {hello.get('uid')}" + (f" ({hello['drop_root_skipped']})"
                                                             if hello.get("drop_root_skipped") else ""),
                 "rlimits", "process-group kill", f"python {hello.get('python')}"]
        self.isolation = ", ".join(parts)

    def run(self, programs: Sequence[Program], *, progress: bool = False) -> list[Verdict]:
        if not programs:
            return []
        return self._driver.run(programs, progress=progress)

    def close(self) -> None:
        self._driver.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> ProcessSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
