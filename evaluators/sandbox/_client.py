"""Host side of the worker protocol, shared by every backend.

A backend supplies a way to start a worker and get a :class:`Channel` to it (pipes to a
host process, or the attached stdin/stdout of a container). :class:`WorkerDriver` streams
programs through it with a bounded window (so neither side can block the other), turns
the answers into :class:`Verdict` objects in input order, and handles a dying worker:

- ``recover=True`` (process backend, where a program *can* kill its worker): the programs
  that were in flight are re-run one at a time on a fresh worker; one that kills the worker
  twice alone gets a ``crashed`` verdict. Too many deaths raise :class:`SandboxError`.
- ``recover=False`` (docker backend, where the worker is PID 1 and cannot be killed from
  inside): any death is an infrastructure failure and raises :class:`SandboxError`.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Sequence
from typing import Protocol

from evaluators.sandbox._base import STATUSES, Program, SandboxError, Verdict

__all__ = ["Channel", "WorkerDriver", "WorkerDied"]

MAX_RESTARTS = 20
WINDOW = 32  # programs in flight to the worker (bounded, so neither side's pipe can fill and block)
READY_TIMEOUT_S = 60.0
SLACK_S = 30.0  # extra time the watchdog allows beyond the programs' own timeouts


class WorkerDied(Exception):
    """The worker's stdout closed (it exited or was killed)."""


class Channel(Protocol):
    def send(self, data: bytes) -> None: ...

    def recv(self, timeout: float) -> bytes | None:
        """Next chunk of the worker's stdout; ``b""`` at EOF; ``None`` on timeout."""

    def diagnostics(self) -> str:
        """What is known about the worker's end (exit code, stderr tail), for error messages."""

    def close(self) -> None: ...


class WorkerDriver:
    def __init__(self, start: Callable[[], Channel], *, workers: int, recover: bool, label: str) -> None:
        self._start = start
        self.workers = workers
        self.window = max(WINDOW, 2 * workers)
        self.recover = recover
        self.label = label
        self.channel: Channel | None = None
        self.hello: dict = {}
        self._buf = b""

    # ---- channel lifecycle

    def _open(self) -> Channel:
        if self.channel is None:
            self._buf = b""
            channel = self._start()
            try:
                line = self._readline(channel, READY_TIMEOUT_S)
            except WorkerDied:
                channel.close()
                raise SandboxError(f"{self.label}: the sandbox worker died on start-up: {channel.diagnostics()}") from None
            if line is None:
                channel.close()
                raise SandboxError(f"{self.label}: the sandbox worker did not become ready in {READY_TIMEOUT_S:g}s")
            hello = json.loads(line)
            if not hello.get("ready"):
                channel.close()
                raise SandboxError(f"{self.label}: unexpected first line from the sandbox worker: {line[:200]!r}")
            self.hello, self.channel = hello, channel
        return self.channel

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    def _readline(self, channel: Channel, timeout: float) -> bytes | None:
        while b"\n" not in self._buf:
            chunk = channel.recv(timeout)
            if chunk is None:
                return None
            if not chunk:
                raise WorkerDied()
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    # ---- running a batch

    def run(self, programs: Sequence[Program], *, progress: bool = False) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(programs)
        todo = collections.deque(range(len(programs)))
        solo: collections.deque[int] = collections.deque()
        strikes: collections.Counter[int] = collections.Counter()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(programs), desc=f"sandbox ({self.label})", unit="prog")
        try:
            self._run(programs, verdicts, todo, solo, strikes, bar)
        except SandboxError as e:
            e.partial = list(verdicts)  # what was judged before the failure (None for the rest)
            raise
        finally:
            if bar is not None:
                bar.close()
        assert all(v is not None for v in verdicts)
        return verdicts  # type: ignore[return-value]

    def _run(self, programs, verdicts, todo, solo, strikes, bar) -> None:
        """Stream ``todo``; after a worker death re-run the programs in flight alone (see module doc)."""
        restarts = 0
        while todo or solo:
            channel = self._open()
            batch = collections.deque([solo.popleft()]) if solo else todo
            alone = batch is not todo
            try:
                self._stream(channel, programs, batch, verdicts, bar)
            except WorkerDied as died:
                diag = channel.diagnostics()
                self.close()
                if not self.recover:
                    raise SandboxError(f"{self.label}: the sandbox worker died: {diag}") from None
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise SandboxError(f"{self.label}: the sandbox worker died {restarts} times; last: {diag}") from None
                if alone:
                    (i,) = died.args[0]
                    strikes[i] += 1
                    if strikes[i] >= 2:
                        verdicts[i] = Verdict(programs[i].id, "crashed", "the program killed the sandbox worker", 0.0)
                        if bar is not None:
                            bar.update(1)
                    else:
                        solo.appendleft(i)
                else:
                    solo.extend(sorted(died.args[0]))

    def _stream(self, channel: Channel, programs, todo: collections.deque, verdicts, bar) -> None:
        inflight: dict[str, int] = {}
        while todo or inflight:
            if todo and len(inflight) < self.window // 2 + 1:  # refill in bursts: fewer, larger writes
                burst = []
                while todo and len(inflight) < self.window:
                    i = todo.popleft()
                    p = programs[i]
                    inflight[str(i)] = i
                    burst.append(json.dumps({"id": str(i), "source": p.source, "timeout_s": float(p.timeout_s)}))
                try:
                    channel.send(("\n".join(burst) + "\n").encode())
                except OSError:
                    raise WorkerDied(list(inflight.values())) from None
            # Watchdog: the worker enforces every timeout itself, so silence this long means it hung.
            longest = max(programs[i].timeout_s for i in inflight.values())
            limit = 2 * longest * (len(inflight) / self.workers + 1) + SLACK_S
            try:
                line = self._readline(channel, limit)
            except WorkerDied:
                raise WorkerDied(list(inflight.values())) from None
            if line is None:
                raise SandboxError(f"{self.label}: the sandbox worker gave no verdict for {limit:.0f}s; "
                                   f"{channel.diagnostics()}")
            msg = json.loads(line)
            i = inflight.pop(msg["id"])
            status = msg["status"]
            if status not in STATUSES:
                raise SandboxError(f"{self.label}: the worker returned an unknown status {status!r}")
            verdicts[i] = Verdict(programs[i].id, status, msg.get("detail", ""), float(msg.get("duration_s", 0.0)),
                                  message=msg.get("message", ""))
            if bar is not None:
                bar.update(1)
