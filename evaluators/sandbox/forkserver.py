"""The sandbox's fork server ("zygote") and the per-program child.

WARNING: this file executes untrusted code. Like worker.py it is a stdlib-only script copied
into the sandbox image as is; it imports nothing from the project.

The worker (worker.py) starts it as a fresh interpreter, ``python -I -S forkserver.py FD ...``,
with a Unix socket on fd 3, stdin and stdout on /dev/null. It is kept small on purpose: every
fork copies its page tables and every child's exit tears them down, about 37 us per MiB of its
private memory on our 2-core VM, and forking it is most of what a program costs. So it imports
only what the children need (no json, argparse, selectors, ...: ~5 MiB instead of the worker's
~10), and everything a child inherits is set up here once: privileges (nobody, when started as
root), non-dumpable, rlimits, signal dispositions, garbage collector off.

It does nothing but fork children and reap them, answering requests in the order they came:

    (start)                                               -> 0 (hello: ready)
    F, body = scratch path, fds [job_r, result_w, out_w]  -> pid (-1: fork failed)
    R, pid                                                -> wait status (-1: not ours)

A child starts a new session, points stdout/stderr at its capped pipe, closes every other
descriptor, becomes a child subreaper with a parent-death signal, moves to its scratch
directory and then waits on ``job_r`` for ``nonce timeout_s`` NL source. It writes ``STARTED``
to its result pipe, runs the program as ``__main__``, kills whatever the program left running,
and writes its result: ``nonce status len(detail)`` NL detail message.
"""

from __future__ import annotations

import _signal
import _socket
import ctypes
import gc
import os
import resource
import struct
import sys

# Warm the modules generated programs import most, so forked children do not pay for them.
# typing brings re, functools, collections, operator, contextlib. Not ``random`` (nor secrets,
# statistics, tempfile, which import it): its at-fork hook reseeds the generator in every
# child, ~40 page faults and ~0.2 ms per fork. Not dataclasses, decimal, hashlib: they would
# add ~4 MiB that every fork pays for, for the few programs that import them.
import bisect, collections.abc, copy, heapq, itertools, math, string, typing  # noqa: E401,F401

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
NOBODY = 65534
SIGKILL, SIGSTOP, SIGXFSZ, SIGINT = 9, 19, 25, 2
REQUEST = struct.Struct("!cqI")  # kind, pid (R), body size (F: the scratch path)
ANSWER = struct.Struct("!q")  # 0 (hello), pid (F, -1 when the fork failed) or wait status (R, -1 when not ours)
STARTED = b"+"  # first byte on the result pipe: the child has its program and is about to run it
SETUP_FAILED = 70  # exit code of a child whose sandbox set-up failed (an infrastructure failure)
DETAIL_MAX = 2000
SOCKET_FD = 3

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - static Pythons
    _libc = None


def prctl(option: int, value: int) -> None:
    if _libc is not None:
        _libc.prctl(option, value, 0, 0, 0)


def children_of(pid: int) -> list[int]:
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


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``, its process group and all its descendants (stop first so nothing forks meanwhile)."""
    seen: set[int] = set()
    stack = [pid]
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            os.kill(p, SIGSTOP)
        except OSError:
            continue
        stack.extend(children_of(p))
    for p in seen:
        for kill in (os.killpg, os.kill):
            try:
                kill(p, SIGKILL)
            except OSError:
                pass


def encode_result(nonce: str, status: str, detail: str, message: str) -> bytes:
    """``nonce status len(detail)`` NL detail message (cheaper in the child than json: fewer pages touched)."""
    return f"{nonce} {status} {len(detail)}\n{detail}{message}".encode("utf-8", "surrogatepass")


def decode_result(raw: bytes) -> tuple[str, str, str, str] | None:
    """(nonce, status, detail, message), or None when ``raw`` is not a well-formed result."""
    try:
        head, _, rest = raw.decode("utf-8", "surrogatepass").partition("\n")
        nonce, status, n = head.split(" ")
        n = int(n)
    except ValueError:
        return None
    if status not in ("passed", "failed", "error", "oom") or not 0 <= n <= len(rest):
        return None
    return nonce, status, rest[:n], rest[n:]


# --------------------------------------------------------------------------- the child


def _child_main(result_fd: int, scratch: str, job_r: int, result_w: int, out_w: int) -> None:
    """Runs in the forked child: set up, wait for the program on ``job_r``, run it. Never returns."""
    _exit, _write = os._exit, os.write
    job_fd = result_fd + 1
    try:
        os.setsid()
        os.dup2(out_w, 1)  # fd 0 is /dev/null already (inherited)
        os.dup2(out_w, 2)
        os.dup2(result_w, result_fd)
        os.dup2(job_r, job_fd)
        os.closerange(3, result_fd)
        os.closerange(job_fd + 1, 65536)
        prctl(PR_SET_CHILD_SUBREAPER, 1)  # daemons the program spawns stay our children
        prctl(PR_SET_PDEATHSIG, SIGKILL)  # die with the fork server (not inherited across fork)
        os.chdir(scratch)
        os.environ["HOME"] = os.environ["TMPDIR"] = scratch
        # sys.stdin/stdout/stderr already wrap fds 0/1/2, which now point at /dev/null and the capped pipe

        # Ready: wait for "nonce timeout_s\n" + source. EOF without one = not needed after all.
        chunks = []
        while True:
            chunk = os.read(job_fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(job_fd)
        if not chunks:
            _exit(0)
        head, _, source = b"".join(chunks).partition(b"\n")
        nonce, timeout_s = head.decode().split()
        cpu = int(float(timeout_s)) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        source = source.decode("utf-8", "surrogatepass")
        _write(result_fd, STARTED)  # from here on, whatever happens is the program's doing
    except BaseException:  # noqa: BLE001 - the sandbox itself failed to set up
        _exit(SETUP_FAILED)

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
        if _has_children():
            left = children_of(os.getpid())
            for p in left:
                kill_tree(p)
            if left and status == "passed":
                status, message = "failed", "left background processes running"
                detail = f"left {len(left)} background process(es) running after the program ended"
        _write(result_fd, encode_result(nonce, status, detail[:DETAIL_MAX], message[:DETAIL_MAX]))
    except BaseException:  # noqa: BLE001
        _exit(71)
    _exit(0)


def _has_children() -> bool:
    """Does this process still have children (reaping the exited ones)? One syscall in the common case."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def _describe(e: BaseException) -> str:
    """``Type: message (line N)`` where N is the deepest line of the program in the traceback."""
    line, tb = None, e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<string>":
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f" (line {line})" if line else ""
    return f"{type(e).__name__}: {e}{where}"


# --------------------------------------------------------------------------- the fork server

# Trusted code run a few times before serving, so that what children run is already warm here:
# CPython specializes bytecode in place and caches type lookups, and every such write a child
# makes to a page it shares with us costs a copy-on-write fault. Measured: ~100 faults and
# ~0.5 ms less per child than a cold server. Shaped like benchmark programs (typing, loops,
# str/list/dict/set methods, a failing assert, a raising call).
_WARM_UP = (
    """
from typing import Dict, List, Optional, Tuple
import math


def close(numbers: List[float], threshold: float) -> bool:
    for i, a in enumerate(numbers):
        for j, b in enumerate(numbers):
            if i != j and abs(a - b) < threshold:
                return True
    return False


def words(text: str) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for w in text.lower().replace(",", " ").split():
        counts[w] = counts.get(w, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def shape(xs: List[int]) -> Tuple[int, Optional[int], str]:
    evens = [x for x in xs if x % 2 == 0]
    seen = set(xs) | {0}
    return len(seen), (max(evens) if evens else None), "".join(str(x) for x in reversed(xs))[:8]


def check(candidate):
    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True
    assert candidate([1.0, 2.0, 3.0], 0.5) == False
    assert words("a b, A c") == {"a": 2, "b": 1, "c": 1}
    assert shape([3, 4, 4, 10]) == (4, 10, "104443")
    assert math.isclose(math.sqrt(16.0), 4.0) and int("12") + len("abc") == 15
    print("ok", [i * i for i in range(5)], tuple(zip("ab", (1, 2))))


check(close)
""",
    "def f(x):\n    return x + 1\n\nassert f(1) == 3, 'wrong'\n",
    "def f(x):\n    return [][x]\n\nf(0)\n",
    "def f(x)\n    return x\n",
)


def _warm_up() -> None:
    import io

    sink = io.StringIO()
    stdout, sys.stdout = sys.stdout, sink
    try:
        for _ in range(10):  # past CPython's specialization warm-up counters
            for source in _WARM_UP:
                try:
                    exec(compile(source, "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102 - trusted
                except Exception as e:  # noqa: BLE001
                    _describe(e)
                    encode_result("0" * 32, "failed", f"{type(e).__name__}: {e}", str(e))
            os.environ["HOME"] = os.environ["TMPDIR"] = "/"
            del os.environ["HOME"], os.environ["TMPDIR"]
            encode_result("0" * 32, "passed", "", "")
    finally:
        sys.stdout = stdout


def _set_up(memory_mb: int, file_limit_mb: int, nproc: int, drop_root: bool) -> None:
    """Everything the children inherit, done once."""
    prctl(PR_SET_PDEATHSIG, SIGKILL)  # die with the worker
    os.closerange(SOCKET_FD + 1, 65536)
    if drop_root and os.getuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    prctl(PR_SET_DUMPABLE, 0)  # after setuid, which resets it: no ptrace, no /proc/<pid>/mem for neighbours
    mem = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    fsize = file_limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    if nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    _signal.signal(SIGXFSZ, _signal.SIG_IGN)  # a too-large file raises OSError instead of killing
    _signal.signal(SIGINT, _signal.SIG_DFL)
    sys.argv = ["<program>"]
    _warm_up()
    gc.collect()
    gc.freeze()  # keep the warm heap shared copy-on-write with the children
    gc.disable()  # fewer copy-on-write page faults; the children are short-lived


def serve(sock: _socket.socket, result_fd: int) -> None:
    """Answer requests until the worker closes the socket. Never returns."""
    # Every object this loop touches costs a page fault per fork, hence the lean decoding.
    recvmsg, sendall, unpack, answer = sock.recvmsg, sock.sendall, REQUEST.unpack, ANSWER.pack
    cmsg_space = _socket.CMSG_SPACE(12)
    sendall(answer(0))
    while True:
        head, ancdata, _, _ = recvmsg(REQUEST.size, cmsg_space)
        if not head:
            os._exit(0)
        if len(head) < REQUEST.size:
            head += _recv_exact(sock, REQUEST.size - len(head))
        kind, pid, size = unpack(head)
        if kind == b"R":
            try:
                status = os.waitpid(pid, 0)[1]
            except ChildProcessError:
                status = -1
            sendall(answer(status))
            continue
        fds = struct.unpack("3i", ancdata[0][2][:12])
        scratch = _recv_exact(sock, size).decode()
        try:
            pid = os.fork()
        except BlockingIOError:  # a fork bomb next door exhausted the pids
            pid = -1
        if pid == 0:
            sock.close()
            _child_main(result_fd, scratch, *fds)
        for fd in fds:
            os.close(fd)
        sendall(answer(pid))


def _recv_exact(sock: _socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("fork server socket closed")
        data += chunk
    return data


def main(argv: list[str]) -> None:
    """``forkserver.py RESULT_FD MEMORY_MB FILE_LIMIT_MB NPROC DROP_ROOT(0|1)``; the socket is fd 3."""
    try:
        result_fd, memory_mb, file_limit_mb, nproc, drop_root = (int(a) for a in argv)
        sock = _socket.socket(fileno=SOCKET_FD)
        _set_up(memory_mb, file_limit_mb, nproc, bool(drop_root))
    except Exception as e:  # noqa: BLE001
        sys.stderr.write(f"sandbox fork server: cannot start: {type(e).__name__}: {e}\n")
        os._exit(SETUP_FAILED)
    try:
        serve(sock, result_fd)
    except BaseException:  # noqa: BLE001 - the worker sees the socket close and starts another
        os._exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
