"""The in-sandbox worker: runs untrusted programs, one forked child each.

WARNING: this file executes untrusted code. It is a single stdlib-only script so that it
can be copied into the sandbox image as is; it imports nothing from the project.

Protocol (JSON lines):

    stdin   {"id": str, "source": str, "timeout_s": float}         one program per line; EOF = finish
    stdout  {"ready": true, ...}                                  once, after start-up
            {"id", "status", "detail", "message", "duration_s"}   one verdict per program, in completion order

For every program the worker (a warm parent that imported the common stdlib once):

1. forks a child that starts a new session (its own process group), drops privileges when
   running as root, applies rlimits (memory, CPU, file size, open files), points stdin at
   /dev/null and stdout/stderr at a capped pipe, closes every other descriptor, becomes a
   child subreaper (daemons it spawns stay its children), then ``exec``s the program;
2. enforces the wall-clock timeout from outside: at the deadline it SIGKILLs the whole
   process group; output beyond the cap is killed the same way;
3. reads the child's result from a private pipe. A pass needs both a result carrying the
   per-program random nonce *and* a clean exit: ``os._exit(0)``, ``sys.exit(0)``, printing
   "passed" or killing the worker never produce one;
4. kills anything the program left behind (its process group and any orphan re-parented
   to the worker) before the next verdict is written.

A child killed by a signal nobody in the sandbox should have sent (SIGKILL/SIGTERM while
siblings were running) is re-run once alone, so a program that signals its siblings cannot
change their verdicts.
"""

from __future__ import annotations

import argparse
import gc
import collections
import ctypes
import errno
import json
import os
import resource
import secrets
import selectors
import shutil
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Sequence

# Warm the modules generated programs import most, so forked children do not pay for them.
import bisect, collections.abc, copy, dataclasses, decimal, fractions, functools, hashlib, heapq  # noqa: E401,F401
import itertools, math, operator, random, re, statistics, string, typing  # noqa: E401,F401

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
NOBODY = 65534
# Signals that mean "the program crashed by itself"; any other fatal signal came from outside.
SELF_INFLICTED = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT, signal.SIGSYS}
OUTPUT_TAIL = 2048
ABUSIVE_PROCESSES = 16  # a program killed with more processes than this was a fork bomb
DETAIL_MAX = 2000
_REQUEST = struct.Struct("!cqdI")  # fork server request: kind, pid (R), timeout_s (F), body size (F)
_ANSWER = struct.Struct("!q")  # pid (F, -1 when the fork failed) or wait status (R, -1 when not ours)
ZYGOTE_TIMEOUT_S = 1.0  # a fork server that does not answer this fast was stopped from inside: replace it

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - static Pythons
    _libc = None


def _prctl_subreaper() -> None:
    if _libc is not None:
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (all its threads), from /proc."""
    kids: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(p) for p in f.read().split())
        except OSError:
            pass
    return kids


def _group_size(pgid: int) -> int:
    """How many processes are in process group ``pgid`` (from /proc/*/stat)."""
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(fields) > 2 and int(fields[2]) == pgid:
                n += 1
    return n


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid``, its process group and all its descendants (stop first so nothing forks meanwhile)."""
    seen: set[int] = set()
    stack = [pid]
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            os.kill(p, signal.SIGSTOP)
        except OSError:
            continue
        stack.extend(_children_of(p))
    for p in seen:
        for kill in (os.killpg, os.kill):
            try:
                kill(p, signal.SIGKILL)
            except OSError:
                pass


# --------------------------------------------------------------------------- the child


def _child_main(job: "Job", cfg: argparse.Namespace, result_fd: int, out_w: int) -> None:
    """Runs in the forked child. Never returns."""
    _exit, _write, _dumps, _monotonic = os._exit, os.write, json.dumps, time.monotonic
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.dup2(job.result_w, result_fd)
        os.set_inheritable(result_fd, True)
        os.closerange(3, result_fd)
        os.closerange(result_fd + 1, 65536)
        _prctl_subreaper()
        scratch = job.scratch
        if os.getuid() == 0 and cfg.drop_root:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        if _libc is not None:  # die with the worker, whatever happens to it (set after setuid, which clears it)
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.chdir(scratch)
        mem = cfg.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        cpu = int(job.timeout_s) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        fsize = cfg.file_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        if cfg.nproc:
            resource.setrlimit(resource.RLIMIT_NPROC, (cfg.nproc, cfg.nproc))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large file raises OSError instead of killing
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.environ["HOME"] = os.environ["TMPDIR"] = scratch  # the rest was cleaned once in main()
        # sys.stdin/stdout/stderr already wrap fds 0/1/2, which now point at /dev/null and the capped pipe
        sys.argv = ["<program>"]
        nonce, source = job.nonce, job.source
        job.nonce = job.source = ""
        gc.disable()  # fewer copy-on-write page faults; the child is short-lived
    except BaseException:  # noqa: BLE001 - the sandbox itself failed to set up
        _exit(70)

    status, detail, message = "passed", "", ""
    try:
        code = compile(source, "<string>", "exec")
    except BaseException as e:  # noqa: BLE001
        status, detail, message = "error", f"{type(e).__name__}: {e}", str(e)
    else:
        try:
            exec(code, {"__name__": "__main__", "__builtins__": __builtins__})  # noqa: S102 - this is the sandbox
        except AssertionError as e:
            status, detail, message = "failed", _describe(e), str(e)
        except MemoryError as e:
            status, detail, message = "oom", _describe(e), str(e)
        except SystemExit as e:
            status, detail, message = "error", f"SystemExit({e.code!r}) before the tests finished", str(e)
        except BaseException as e:  # noqa: BLE001
            status, detail, message = "error", _describe(e), str(e)
    try:
        left = _children_of(os.getpid())
        if left:
            for p in left:
                _kill_tree(p)
            if status == "passed":
                status, message = "failed", "left background processes running"
                detail = f"left {len(left)} background process(es) running after the program ended"
        payload = _dumps({"n": nonce, "s": status, "d": detail[:DETAIL_MAX], "m": message[:DETAIL_MAX]})
        _write(result_fd, payload.encode())
    except BaseException:  # noqa: BLE001
        _exit(71)
    _exit(0)


def _describe(e: BaseException) -> str:
    """``Type: message (line N)`` where N is the deepest line of the program in the traceback."""
    line = None
    for frame, lineno in traceback.walk_tb(e.__traceback__):
        if frame.f_code.co_filename == "<string>":
            line = lineno
    where = f" (line {line})" if line else ""
    return f"{type(e).__name__}: {e}{where}"


# --------------------------------------------------------------------------- the fork server


def _zygote_main(sock: socket.socket, cfg: argparse.Namespace, result_fd: int) -> None:
    """The fork server ("zygote"). Runs in a process forked from the warm worker; never returns.

    It does nothing but fork children and reap them when the worker asks, so between forks it
    writes to very few pages. The worker's event loop no longer forks, so its own writes stop
    un-sharing (copy-on-write faulting) the warm heap after every fork; on this VM each such
    fault costs ~2.5 us and the event loop took ~250 per program. Requests (``_REQUEST`` header):

        F, timeout_s, body = nonce + scratch + NUL + source, fds [result_w, out_w]  -> pid (-1: fork failed)
        R, pid                                                                     -> wait status (-1: not ours)
    """
    try:
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)  # the verdict stream and the programs' stream belong to the worker alone
        os.dup2(devnull, 1)
        keep = sock.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 65536)
        # Every object this loop touches costs a page fault per fork, hence the lean decoding.
        recvmsg, sendall, unpack, answer = sock.recvmsg, sock.sendall, _REQUEST.unpack, _ANSWER.pack
        cmsg_space = socket.CMSG_SPACE(8)
        job = Job({"id": "", "source": ""})
        while True:
            head, ancdata, _, _ = recvmsg(_REQUEST.size, cmsg_space)
            if not head:
                os._exit(0)
            if len(head) < _REQUEST.size:
                head += _recv_exact(sock, _REQUEST.size - len(head))
            kind, pid, job.timeout_s, size = unpack(head)
            if kind == b"R":
                try:
                    status = os.waitpid(pid, 0)[1]
                except ChildProcessError:
                    status = -1
                sendall(answer(status))
                continue
            fds = struct.unpack("2i", ancdata[0][2][:8])
            body = _recv_exact(sock, size)  # nonce (32 hex digits), scratch, NUL, source
            sep = body.index(0, 32)
            job.nonce, job.scratch = body[:32].decode(), body[32:sep].decode()
            job.source, job.result_w = body[sep + 1:].decode("utf-8", "surrogatepass"), fds[0]
            try:
                pid = os.fork()
            except BlockingIOError:  # a fork bomb next door exhausted the pids
                pid = -1
            if pid == 0:
                sock.close()
                _child_main(job, cfg, result_fd, fds[1])
            for fd in fds:
                os.close(fd)
            sendall(answer(pid))
    except BaseException:  # noqa: BLE001 - the worker sees the socket close and starts another
        os._exit(1)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("fork server socket closed")
        data += chunk
    return data


class ZygoteLost(Exception):
    """The fork server died or stopped answering (a program killed or stopped it)."""


# --------------------------------------------------------------------------- the parent


class Job:
    __slots__ = ("id", "source", "timeout_s", "solo", "retried", "nonce", "scratch", "pid", "pidfd",
                 "result_r", "result_w", "out_r", "out_bytes", "out_tail", "start", "deadline",
                 "killed_by_us", "why_killed", "overlapped", "disturbed")

    def __init__(self, req: dict) -> None:
        self.id = str(req["id"])
        self.source = str(req["source"])
        self.timeout_s = float(req.get("timeout_s", 3.0))
        self.solo = False
        self.retried = False
        self.overlapped = False
        self.disturbed = False
        self.killed_by_us = False
        self.why_killed = ""


class Worker:
    def __init__(self, cfg: argparse.Namespace) -> None:
        self.cfg = cfg
        self.sel = selectors.DefaultSelector()
        self.queue: collections.deque[Job] = collections.deque()
        self.active: dict[int, Job] = {}
        self.free_slots = list(range(cfg.workers))
        self.slot_of: dict[int, int] = {}
        self.stdin_buf = b""
        self.stdin_eof = False
        self.result_fd = 100 + secrets.randbelow(150)
        self.pid = os.getpid()
        self.fork_retry_at = 0.0
        self.outbox: list[str] = []
        self.zygote_pid = 0
        self.zygote: socket.socket | None = None

    # ---- plumbing

    def emit(self, obj: dict) -> None:
        self.outbox.append(json.dumps(obj))

    def flush(self) -> None:
        """Write the verdicts of one loop turn at once (fewer, larger writes through docker's attach)."""
        if not self.outbox:
            return
        data = ("\n".join(self.outbox) + "\n").encode()
        self.outbox.clear()
        while data:
            n = os.write(1, data)
            data = data[n:]

    def read_stdin(self) -> None:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            self.stdin_eof = True
            self.sel.unregister(0)
            return
        self.stdin_buf += chunk
        *lines, self.stdin_buf = self.stdin_buf.split(b"\n")
        for line in lines:
            if line.strip():
                self.queue.append(Job(json.loads(line)))

    # ---- the fork server

    def start_zygote(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            ours.close()
            _zygote_main(theirs, self.cfg, self.result_fd)
        theirs.close()
        ours.settimeout(ZYGOTE_TIMEOUT_S)
        self.zygote_pid, self.zygote = pid, ours

    def replace_zygote(self) -> None:
        """Kill and reap the fork server, then start a fresh one. Its children are now ours.

        Its death SIGKILLs the programs in flight (their parent-death signal), and the worker may have
        stalled up to ZYGOTE_TIMEOUT_S waiting for it: whatever they are judged, unless passed, is
        judged again alone."""
        for job in self.active.values():
            job.disturbed = True
        self.zygote.close()
        try:
            os.kill(self.zygote_pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.waitpid(self.zygote_pid, 0)
        except ChildProcessError:
            pass
        self.start_zygote()

    def ask_zygote(self, kind: bytes, pid: int = 0, timeout_s: float = 0.0, body: bytes = b"",
                   fds: Sequence[int] = ()) -> int:
        try:
            head = _REQUEST.pack(kind, pid, timeout_s, len(body))
            if fds:
                socket.send_fds(self.zygote, [head], list(fds))
            else:
                self.zygote.sendall(head)
            self.zygote.sendall(body)
            return _ANSWER.unpack(_recv_exact(self.zygote, _ANSWER.size))[0]
        except (OSError, EOFError):  # socket.timeout is an OSError
            self.replace_zygote()
            raise ZygoteLost() from None

    def reap(self, pid: int) -> int:
        """Wait status of an exited child (the fork server's child, or ours once the server died)."""
        try:
            status = self.ask_zygote(b"R", pid=pid)
            if status != -1:
                return status
        except ZygoteLost:
            pass
        return os.waitpid(pid, 0)[1]

    # ---- scheduling

    def can_start(self) -> bool:
        if not self.queue or not self.free_slots or time.monotonic() < self.fork_retry_at:
            return False
        if any(j.solo for j in self.active.values()):
            return False
        if self.queue[0].solo:
            return not self.active
        return True

    def start(self, job: Job) -> bool:
        slot = self.free_slots.pop()
        job.scratch = os.path.join(self.cfg.scratch, f"slot-{slot}")
        job.nonce = secrets.token_hex(16)
        job.result_r, job.result_w = os.pipe()
        job.out_r, out_w = os.pipe()
        job.out_bytes, job.out_tail = 0, b""
        job.killed_by_us, job.why_killed, job.disturbed = False, "", False
        body = (job.nonce + job.scratch + "\0" + job.source).encode("utf-8", "surrogatepass")
        try:
            pid = self.ask_zygote(b"F", timeout_s=job.timeout_s, body=body, fds=(job.result_w, out_w))
        except ZygoteLost:
            pid = -1
        if pid < 0:  # a fork bomb next door exhausted the pids, or the server was killed: try again shortly
            for fd in (job.result_r, job.result_w, job.out_r, out_w):
                os.close(fd)
            self.free_slots.append(slot)
            self.fork_retry_at = time.monotonic() + 0.02
            return False
        os.close(out_w)
        os.close(job.result_w)
        job.pid = pid
        job.start = time.monotonic()
        job.deadline = job.start + job.timeout_s
        job.overlapped = bool(self.active)
        for other in self.active.values():
            other.overlapped = True
        self.active[pid] = job
        self.slot_of[pid] = slot
        os.set_blocking(job.out_r, False)
        os.set_blocking(job.result_r, False)
        self.sel.register(job.out_r, selectors.EVENT_READ, ("out", job))
        job.pidfd = os.pidfd_open(pid)
        self.sel.register(job.pidfd, selectors.EVENT_READ, ("exit", job))
        return True

    def kill(self, job: Job, why: str) -> None:
        if not job.killed_by_us:
            job.killed_by_us, job.why_killed = True, why
            if _group_size(job.pid) > ABUSIVE_PROCESSES:  # a fork bomb starves its siblings: judge them again
                for other in self.active.values():
                    if other is not job:
                        other.disturbed = True
        for kill in (os.killpg, os.kill):
            try:
                kill(job.pid, signal.SIGKILL)
            except OSError:
                pass

    def read_output(self, job: Job) -> None:
        try:
            chunk = os.read(job.out_r, 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            self.sel.unregister(job.out_r)
            os.close(job.out_r)
            job.out_r = -1
            return
        job.out_bytes += len(chunk)
        job.out_tail = (job.out_tail + chunk)[-OUTPUT_TAIL:]
        if job.out_bytes > self.cfg.output_limit_mb * 1024 * 1024:
            self.kill(job, "output")

    def finish(self, job: Job) -> None:
        pid = job.pid
        for kill in (os.killpg, os.kill):  # whatever the program left in its group dies with it
            try:
                kill(pid, signal.SIGKILL)
            except OSError:
                pass
        wstatus = self.reap(pid)
        duration = time.monotonic() - job.start
        self.sel.unregister(job.pidfd)
        os.close(job.pidfd)
        raw = b""
        try:
            while True:
                chunk = os.read(job.result_r, 1 << 16)
                if not chunk:
                    break
                raw += chunk
        except BlockingIOError:
            pass
        os.close(job.result_r)
        if job.out_r >= 0:
            try:
                job.out_tail = (job.out_tail + os.read(job.out_r, OUTPUT_TAIL))[-OUTPUT_TAIL:]
            except OSError:
                pass
            self.sel.unregister(job.out_r)
            os.close(job.out_r)
        del self.active[pid]
        self.free_slots.append(self.slot_of.pop(pid))
        self.sweep(job.scratch)

        verdict = self.classify(job, wstatus, raw)
        if verdict is not None and verdict[0] != "passed" and job.disturbed and not job.retried:
            verdict = None
        if verdict is None:  # killed from outside, or starved by a fork bomb: judge it again, alone
            job.retried, job.solo = True, True
            self.queue.appendleft(job)
            return
        status, detail, message = verdict
        self.emit({"id": job.id, "status": status, "detail": detail, "message": message,
                   "duration_s": round(duration, 6)})

    def classify(self, job: Job, wstatus: int, raw: bytes):
        tail = job.out_tail.decode("utf-8", "replace").strip()[-500:]
        if job.why_killed == "timeout":
            return "timeout", f"killed after the {job.timeout_s:g}s wall-clock limit", "timed out"
        if job.why_killed == "output":
            limit = self.cfg.output_limit_mb
            return "failed", f"output limit exceeded (> {limit} MiB)", "output limit exceeded"
        result = None
        if raw:
            try:
                result = json.loads(raw.decode())
            except ValueError:
                result = None
        if os.WIFEXITED(wstatus):
            code = os.WEXITSTATUS(wstatus)
            if code == 0 and isinstance(result, dict) and result.get("n") == job.nonce:
                return result["s"], result["d"], result["m"]
            if code == 70:
                return "crashed", "sandbox child failed to set up", "sandbox child failed to set up"
            msg = f"exited with code {code} before the tests finished"
            return ("failed" if code == 0 else "error"), msg + (f"; output: {tail}" if tail else ""), msg
        sig = os.WTERMSIG(wstatus)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        if sig == signal.SIGXCPU:
            return "timeout", "CPU time limit exceeded (SIGXCPU)", "timed out"
        if sig not in SELF_INFLICTED and job.overlapped and not job.retried:
            return None
        msg = f"killed by {name}"
        if sig == signal.SIGKILL:
            msg += " (possibly out of memory)"
            return "oom" if "MemoryError" in tail else "crashed", msg, msg
        return "crashed", msg + (f"; output: {tail}" if tail else ""), msg

    def sweep(self, scratch: str) -> None:
        """Kill orphans re-parented to us (escaped daemons) and empty the program's scratch."""
        active = set(self.active)
        for _ in range(50):
            strays = [p for p in _children_of(self.pid) if p not in active and p != self.zygote_pid]
            if not strays:
                break
            for p in strays:
                _kill_tree(p)
            for p in strays:
                try:
                    os.waitpid(p, 0)
                except ChildProcessError:
                    pass
        try:
            entries = os.listdir(scratch)
        except OSError:
            entries = []
        for name in entries:
            path = os.path.join(scratch, name)
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except OSError:
                pass

    # ---- main loop

    def run(self) -> None:
        for slot in range(self.cfg.workers):
            path = os.path.join(self.cfg.scratch, f"slot-{slot}")
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o1777)
        self.start_zygote()
        os.set_blocking(0, False)
        self.sel.register(0, selectors.EVENT_READ, ("stdin", None))
        self.emit({"ready": True, "pid": self.pid, "python": sys.version.split()[0],
                   "uid": os.getuid(), "net_isolated": self.cfg.net_isolated,
                   "drop_root": bool(self.cfg.drop_root and os.getuid() == 0),
                   "drop_root_skipped": self.cfg.drop_root_skipped})
        self.flush()
        while True:
            while self.can_start():
                job = self.queue.popleft()
                if not self.start(job):
                    self.queue.appendleft(job)
            self.flush()
            if self.stdin_eof and not self.queue and not self.active:
                self.zygote.close()  # the server sees EOF and exits
                os.waitpid(self.zygote_pid, 0)
                return
            timeout = None
            if self.queue and self.free_slots:
                timeout = max(0.0, self.fork_retry_at - time.monotonic())
            elif self.active:
                pending = [j.deadline for j in self.active.values() if not j.killed_by_us]
                timeout = max(0.0, min(pending) - time.monotonic()) if pending else 0.05
            for key, _ in self.sel.select(timeout):
                kind, job = key.data
                if kind == "stdin":
                    self.read_stdin()
                elif kind == "out" and job.pid in self.active and job.out_r >= 0:
                    self.read_output(job)
                elif kind == "exit" and job.pid in self.active:
                    self.finish(job)
            now = time.monotonic()
            for job in list(self.active.values()):
                if now >= job.deadline:
                    self.kill(job, "timeout")


def _isolate_network() -> bool:
    """Best effort: move the worker into a fresh network namespace (no interfaces up)."""
    if _libc is None:
        return False
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        return _libc.unshare(CLONE_NEWNET) == 0
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        return False
    try:  # map our own uid/gid to themselves so files keep their owners
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    except OSError:
        pass
    return True


def _nobody_can_import() -> bool:
    """Can a child running as nobody still read the stdlib? (Not when Python lives under /root.)"""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            with open(os.path.join(os.path.dirname(os.__file__), "socket.py"), "rb"):
                pass
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return status == 0


def _default_nproc(uid: int) -> int:
    """Processes ``uid`` may own: what it owns now plus headroom (RLIMIT_NPROC counts per uid)."""
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count + 256


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="sandbox worker (reads programs on stdin, writes verdicts on stdout)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--memory-mb", type=int, default=1024)
    p.add_argument("--file-limit-mb", type=int, default=16)
    p.add_argument("--output-limit-mb", type=int, default=4)
    p.add_argument("--scratch", default="/scratch")
    p.add_argument("--nproc", type=int, default=-1, help="RLIMIT_NPROC for children; -1 = auto, 0 = leave")
    p.add_argument("--drop-root", action="store_true", help="run children as nobody when started as root")
    p.add_argument("--isolate-net", action="store_true", help="try to unshare a fresh network namespace")
    cfg = p.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as PID 1 in a container, no handler = unkillable from inside
    cfg.net_isolated = _isolate_network() if cfg.isolate_net else False
    cfg.drop_root_skipped = ""
    if cfg.drop_root and os.getuid() == 0 and not _nobody_can_import():
        cfg.drop_root = False
        cfg.drop_root_skipped = f"the stdlib ({os.path.dirname(os.__file__)}) is not readable by uid {NOBODY}"
    if cfg.nproc < 0:
        root = os.getuid() == 0
        cfg.nproc = 0 if (root and not cfg.drop_root) else _default_nproc(NOBODY if root else os.getuid())
    # The children's environment, set once here (clearing it in every child cost ~100 page faults).
    os.environ.clear()
    os.environ.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"})
    _prctl_subreaper()
    gc.collect()
    gc.freeze()  # keep the warm heap shared copy-on-write with the children
    Worker(cfg).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
