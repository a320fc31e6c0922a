"""The in-sandbox worker: runs untrusted programs, one forked child each.

WARNING: this file drives the execution of untrusted code. It is a stdlib-only script copied
into the sandbox image as is, next to forkserver.py; it imports nothing from the project.

Protocol (JSON lines):

    stdin   {"id": str, "source": str, "timeout_s": float}         one program per line; EOF = finish
    stdout  {"ready": true, ...}                                  once, after start-up
            {"id", "status", "detail", "message", "duration_s"}   one verdict per program, in completion order

Three kinds of process:

- the **worker** (this event loop) reads programs, hands each to a ready child, enforces the
  wall-clock deadline from outside and writes verdicts;
- the **fork server** (forkserver.py, a small fresh interpreter started by the worker) forks
  children on request and reaps them when asked. It holds the warm modules and every setting
  the children inherit (privileges, rlimits, signals), and stays small, because forking it is
  most of what a program costs;
- one **child** per program, forked *before* its program arrives: it sets up (new session,
  capped output pipe, no other descriptors, subreaper, parent-death signal, its scratch
  directory) and waits on a private pipe. The worker keeps ``--workers`` children ready, so
  forking and setting up the next one overlaps the programs running now; at most ``--workers``
  programs run at once.

For every program the worker:

1. writes ``nonce timeout`` and the source into a ready child's pipe and starts the clock;
   the child answers ``STARTED``, sets its CPU limit and runs the program;
2. at the deadline SIGKILLs the child's whole process group; output beyond the cap is killed
   the same way;
3. reads the child's result from a private pipe. A pass needs both a result carrying the
   per-program random nonce *and* a clean exit: ``os._exit(0)``, ``sys.exit(0)``, printing
   "passed" or killing the worker never produce one;
4. kills anything the program left behind (its process group and any orphan re-parented
   to the worker) and empties its scratch directory before the next verdict is written.

A program that was disturbed by a neighbour is judged again alone: killed by a signal nobody
in the sandbox should have sent (SIGKILL/SIGTERM while siblings were running), starved by a
fork bomb next to it, found *stopped* at its deadline (a sibling sent SIGSTOP), or running
when the fork server died. A child killed or stopped *before* it started its program costs
nothing but time: the program goes to another child.

Why one file of about 770 lines (the project's modules are 100-400): this is the sandbox side
of the trust boundary, and its correctness is a handful of invariants about one event loop:
which child runs which job, who may reap whom, when a slot is clean again. ``Worker`` keeps
them in one class, in sections that follow the protocol (plumbing, the fork server, children,
scheduling, the main loop), so they are audited in one read. It is copied into the image as
one stdlib-only script beside forkserver.py, and its bytes are part of the image's content
hash; splitting it would move no responsibility out of it, only spread the audit over files.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import selectors
import shutil
import signal
import socket
import stat
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FORKSERVER = os.path.join(HERE, "forkserver.py")


def _load_forkserver():
    """The fork server's module, for its protocol constants and helpers (-I keeps HERE off sys.path)."""
    spec = importlib.util.spec_from_file_location("sandbox_forkserver", FORKSERVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fs = _load_forkserver()

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
NOBODY = fs.NOBODY
# Signals that mean "the program crashed by itself"; any other fatal signal came from outside.
SELF_INFLICTED = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT, signal.SIGSYS}
OUTPUT_TAIL = 2048
ABUSIVE_PROCESSES = 16  # a program killed with more processes than this was a fork bomb
MAX_LOST = 3  # a program whose child dies before running it is handed to a new one this often
MAX_SETUP_FAILURES = 3  # children (or fork servers) in a row that fail to set up before the worker gives up
ZYGOTE_TIMEOUT_S = 1.0  # a fork server that leaves a request unanswered this long was stopped: replace it
ZYGOTE_START_S = 30.0  # time a fresh fork server has to say hello


def _stat_fields(pid: int) -> list[bytes]:
    """Fields of /proc/pid/stat after the command name (state first); [] if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _group_size(pgid: int) -> int:
    """How many processes are in process group ``pgid`` (from /proc/*/stat)."""
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if len(fields) > 2 and int(fields[2]) == pgid:
                n += 1
    return n


def _is_stopped(pid: int) -> bool:
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] in (b"T", b"t")


# --------------------------------------------------------------------------- the parent


class Job:
    """A program to judge (it may be run twice: once more alone when a neighbour disturbed it)."""

    __slots__ = ("id", "source", "timeout_s", "solo", "retried", "lost")

    def __init__(self, req: dict) -> None:
        self.id = str(req["id"])
        self.source = str(req["source"])
        self.timeout_s = float(req.get("timeout_s", 3.0))
        self.solo = False
        self.retried = False
        self.lost = 0  # times its child died before running it (killed or stopped by a neighbour)


class Child:
    """One forked child: asked for, ready (idle), running a job, then exited and waiting to be reaped."""

    __slots__ = ("slot", "scratch", "gen", "pid", "pidfd", "job_w", "result_r", "out_r", "job", "pending",
                 "out_bytes", "out_tail", "nonce", "start", "end", "deadline", "killed_by_us", "why_killed",
                 "overlapped", "disturbed")

    def __init__(self, slot: int, scratch: str, gen: int) -> None:
        self.slot, self.scratch, self.gen = slot, scratch, gen
        self.pid = self.pidfd = -1
        self.job: Job | None = None
        self.pending = b""
        self.out_bytes, self.out_tail = 0, b""
        self.killed_by_us, self.why_killed = False, ""
        self.overlapped = self.disturbed = False
        self.start = self.end = self.deadline = 0.0


class Worker:
    def __init__(self, cfg: argparse.Namespace) -> None:
        self.cfg = cfg
        self.sel = selectors.DefaultSelector()
        self.queue: collections.deque[Job] = collections.deque()
        self.ready: collections.deque[Child] = collections.deque()  # forked, set up, waiting for a job
        self.running: dict[int, Child] = {}  # pid -> child running a job
        self.exited: dict[int, Child] = {}  # pid -> child that exited, reap asked from the fork server
        self.dropped: dict[int, Child] = {}  # pid -> ready child killed by us, exit not yet seen
        self.asks: collections.deque = collections.deque()  # (kind, child, sent at), answered in order
        self.answers = b""
        # Scratch slots: one per running, ready and being-reaped child.
        self.free_slots = list(range(3 * cfg.workers))
        self.slot_ids: dict[str, tuple[int, int]] = {}  # scratch dir -> (device, inode) it was made with
        self.stdin_buf = b""
        self.stdin_eof = False
        self.result_fd = 100 + os.urandom(1)[0] % 150
        self.pid = os.getpid()
        self.fork_retry_at = 0.0
        self.setup_failures = 0
        self.zygote_failures = 0
        self.outbox: list[str] = []
        self.zygote_pid = 0
        self.zygote: socket.socket | None = None
        self.gen = 0  # fork server generation; children of an older one are ours to reap

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
        """Start a fresh fork server: a new interpreter (small, unlike this one), the socket on fd 3."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        os.set_inheritable(theirs.fileno(), True)
        cfg = self.cfg
        argv = [sys.executable, "-I", "-S", FORKSERVER, str(self.result_fd), str(cfg.memory_mb),
                str(cfg.file_limit_mb), str(cfg.nproc), str(int(bool(cfg.drop_root)))]
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),  # the verdict stream is ours alone
                   (os.POSIX_SPAWN_DUP2, theirs.fileno(), fs.SOCKET_FD)]
        pid = os.posix_spawn(sys.executable, argv, os.environ, file_actions=actions)
        theirs.close()
        ours.settimeout(ZYGOTE_TIMEOUT_S)
        self.zygote_pid, self.zygote = pid, ours
        self.sel.register(ours, selectors.EVENT_READ, ("zygote", None))
        self.asks.append((b"H", None, time.monotonic()))  # its hello is the answer to this

    def replace_zygote(self) -> None:
        """Kill and reap the fork server, then start a fresh one. Its children are now ours.

        Its death SIGKILLs its children (their parent-death signal): the programs in flight are
        judged again alone unless they passed, ready children are dropped, and the reaps it still
        owed are done here."""
        self.sel.unregister(self.zygote)
        self.zygote.close()
        try:
            os.kill(self.zygote_pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.waitpid(self.zygote_pid, 0)  # once it is reaped, its children are re-parented to us
        except ChildProcessError:
            pass
        self.gen += 1
        asks, self.asks, self.answers = self.asks, collections.deque(), b""
        if asks and asks[0][0] == b"H" and not self.running:  # died before its hello, and no program to blame
            self.zygote_failures += 1
            if self.zygote_failures >= MAX_SETUP_FAILURES:
                _fatal(f"the fork server failed to start {self.zygote_failures} times in a row "
                       f"({sys.executable} {FORKSERVER}); see its message above")
        for child in self.running.values():
            child.disturbed = True
            _kill_quietly(child.pid)
        self.drop_ready()
        for kind, child, _ in asks:
            if kind == b"F":
                self.discard(child)  # forked or not: an orphan is killed by the next sweep
            elif kind == b"R":
                self.reaped(child, _waitpid(child.pid))
        self.start_zygote()

    def ask(self, kind: bytes, child: Child, pid: int = 0, body: bytes = b"", fds: tuple = ()) -> bool:
        """Send a request to the fork server; its answer is handled in the event loop."""
        head = fs.REQUEST.pack(kind, pid, len(body))
        try:
            if fds:
                socket.send_fds(self.zygote, [head + body], list(fds))
            else:
                self.zygote.sendall(head)
        except OSError:  # dead, or stopped with a full socket buffer (socket.timeout is an OSError)
            self.replace_zygote()
            return False
        self.asks.append((kind, child, time.monotonic()))
        return True

    def ask_limit(self) -> float:
        """How long the oldest request may wait: a fresh fork server has longer (it starts an interpreter)."""
        return ZYGOTE_START_S if self.asks[0][0] == b"H" else ZYGOTE_TIMEOUT_S

    def read_answers(self) -> None:
        try:
            data = self.zygote.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            self.replace_zygote()
            return
        self.answers += data
        size = fs.ANSWER.size
        while len(self.answers) >= size and self.asks:
            (value,) = fs.ANSWER.unpack_from(self.answers)
            self.answers = self.answers[size:]
            kind, child, _ = self.asks.popleft()
            if kind == b"H":  # hello: the requests queued behind it were sent while it started
                self.zygote_failures = 0
                now = time.monotonic()
                self.asks = collections.deque((k, c, now) for k, c, _ in self.asks)
            elif kind == b"F":
                self.forked(child, value)
            else:
                self.reaped(child, value if value != -1 else _waitpid(child.pid))

    # ---- children

    def top_up(self) -> None:
        """Ask for children until ``workers`` are ready or on their way."""
        forking = sum(kind == b"F" for kind, _, _ in self.asks)
        while len(self.ready) + forking < self.cfg.workers and self.free_slots:
            if time.monotonic() < self.fork_retry_at:
                return
            slot = self.free_slots.pop()
            child = Child(slot, os.path.join(self.cfg.scratch, f"slot-{slot}"), self.gen)
            self.sweep(child.scratch, orphans=False)  # a real, empty, mode-1777 directory right now
            job_r, child.job_w = os.pipe()
            os.set_blocking(child.job_w, False)  # a big program is written as the child reads it
            child.result_r, result_w = os.pipe()
            child.out_r, out_w = os.pipe()
            sent = self.ask(b"F", child, body=child.scratch.encode(), fds=(job_r, result_w, out_w))
            for fd in (job_r, result_w, out_w):
                os.close(fd)
            if not sent:
                self.discard(child)
                return
            forking += 1

    def forked(self, child: Child, pid: int) -> None:
        if pid < 0:  # a fork bomb next door exhausted the pids: try again shortly
            self.discard(child)
            self.fork_retry_at = time.monotonic() + 0.02
            return
        child.pid = pid
        try:
            child.pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # gone and reaped before its pid reached us (swept as a stray while
            self.discard(child)  # the fork server's answer was in flight): it never had a job
            return
        self.sel.register(child.pidfd, selectors.EVENT_READ, ("exit", child))
        self.ready.append(child)

    def discard(self, child: Child, orphans: bool = True) -> None:
        """Close a child's pipes, empty its scratch and free its slot (its process is dead, or will be swept)."""
        for fd in (child.job_w, child.result_r, child.out_r, child.pidfd):
            if fd >= 0:
                os.close(fd)
        child.job_w = child.result_r = child.out_r = child.pidfd = -1
        self.sweep(child.scratch, orphans)
        self.free_slots.append(child.slot)

    def drop_ready(self) -> None:
        """Kill every ready child (a neighbour may have stopped them, or their fork server died); fresh
        ones are forked. Their exits are still seen and reaped."""
        for child in self.ready:
            _kill_quietly(child.pid)
            self.dropped[child.pid] = child
        self.ready.clear()

    # ---- scheduling

    def can_start(self) -> bool:
        if not self.queue or not self.ready:
            return False
        if any(c.job.solo for c in self.running.values()):
            return False
        if self.queue[0].solo:
            return not self.running
        return len(self.running) < self.cfg.workers

    def start(self, job: Job) -> None:
        child = self.ready.popleft()
        child.job = job
        child.nonce = os.urandom(16).hex()
        data = f"{child.nonce} {job.timeout_s!r}\n".encode() + job.source.encode("utf-8", "surrogatepass")
        try:
            n = os.write(child.job_w, data)  # the pipe is empty: never BlockingIOError
        except OSError:  # it died while waiting (a program killed it): run the job on another one
            self.queue.appendleft(job)
            child.job = None
            self.exited[child.pid] = child  # its exit is noticed and reaped as a ready child's
            return
        child.start = time.monotonic()
        child.deadline = child.start + job.timeout_s
        child.overlapped = bool(self.running)
        for other in self.running.values():
            other.overlapped = True
        self.running[child.pid] = child
        os.set_blocking(child.out_r, False)
        os.set_blocking(child.result_r, False)
        self.sel.register(child.out_r, selectors.EVENT_READ, ("out", child))
        if n < len(data):  # a big program: write the rest as the child reads
            child.pending = data[n:]
            self.sel.register(child.job_w, selectors.EVENT_WRITE, ("in", child))
        else:
            os.close(child.job_w)
            child.job_w = -1

    def write_job(self, child: Child) -> None:
        try:
            n = os.write(child.job_w, child.pending)
        except BlockingIOError:
            return
        except OSError:
            n = len(child.pending)  # the child is gone; its exit tells the rest
        child.pending = child.pending[n:]
        if not child.pending:
            self.sel.unregister(child.job_w)
            os.close(child.job_w)
            child.job_w = -1

    def kill(self, child: Child, why: str) -> None:
        if not child.killed_by_us:
            child.killed_by_us, child.why_killed = True, why
            if _group_size(child.pid) > ABUSIVE_PROCESSES:  # a fork bomb starves its siblings: judge them again
                for other in self.running.values():
                    if other is not child:
                        other.disturbed = True
        _kill_group(child.pid)

    def read_output(self, child: Child) -> None:
        try:
            chunk = os.read(child.out_r, 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            self.sel.unregister(child.out_r)
            os.close(child.out_r)
            child.out_r = -1
            return
        child.out_bytes += len(chunk)
        child.out_tail = (child.out_tail + chunk)[-OUTPUT_TAIL:]
        if child.out_bytes > self.cfg.output_limit_mb * 1024 * 1024:
            self.kill(child, "output")

    def exited_event(self, child: Child) -> None:
        """The child's pidfd fired: it exited (or died while ready). Reap it through its parent."""
        child.end = time.monotonic()
        self.sel.unregister(child.pidfd)
        os.close(child.pidfd)
        child.pidfd = -1
        if child.job is not None:
            del self.running[child.pid]
            _kill_group(child.pid)  # whatever the program left in its group dies with it
        elif child in self.ready:
            self.ready.remove(child)
        self.dropped.pop(child.pid, None)
        self.exited[child.pid] = child
        if child.gen != self.gen or not self.ask(b"R", child, pid=child.pid):
            self.reaped(child, _waitpid(child.pid))  # its fork server is gone: it is our child now

    def reaped(self, child: Child, wstatus: int) -> None:
        if self.exited.pop(child.pid, None) is None:
            return  # already handled (reaped twice while the fork server was replaced)
        if child.job is None:  # died while ready: killed by a program, or its set-up failed
            if os.WIFEXITED(wstatus) and os.WEXITSTATUS(wstatus) == fs.SETUP_FAILED and not self.running:
                self.setup_failures += 1  # (while programs run, one of them may have broken its scratch)
                if self.setup_failures >= MAX_SETUP_FAILURES:
                    _fatal(f"{self.setup_failures} children in a row failed to set up (scratch {child.scratch})")
            self.discard(child)
            return
        self.finish(child, wstatus)

    def finish(self, child: Child, wstatus: int) -> None:
        job = child.job
        raw = b""
        try:
            while True:
                chunk = os.read(child.result_r, 1 << 16)
                if not chunk:
                    break
                raw += chunk
        except BlockingIOError:
            pass
        if child.out_r >= 0:
            try:
                child.out_tail = (child.out_tail + os.read(child.out_r, OUTPUT_TAIL))[-OUTPUT_TAIL:]
            except OSError:
                pass
            self.sel.unregister(child.out_r)
        if child.job_w >= 0 and child.pending:
            self.sel.unregister(child.job_w)
        # A child that exited by itself killed what its program left (it is their subreaper); orphans
        # re-parented to us exist only when it was killed, so only then look for them.
        clean = os.WIFEXITED(wstatus) and os.WEXITSTATUS(wstatus) == 0 and not child.killed_by_us
        if not self.slot_intact(child.scratch):  # a neighbour (programs share a uid) removed, replaced or
            child.disturbed = True  # locked this program's directory: unless it passed, judge it again alone,
            self.drop_ready()  # on a fresh child (the ready ones may sit in broken directories too)
        self.discard(child, orphans=not clean)

        verdict = self.classify(child, wstatus, raw)
        if verdict == "lost":
            job.lost += 1
            if job.lost <= MAX_LOST:
                self.queue.appendleft(job)
                return
            verdict = ("crashed", f"its sandbox child died {job.lost} times before running it", "sandbox child died")
        if verdict is not None and verdict[0] != "passed" and child.disturbed and not job.retried:
            verdict = None
        if verdict is None:  # killed from outside, stopped or starved by a neighbour: judge it again, alone
            job.retried, job.solo = True, True
            self.queue.appendleft(job)
            return
        if not (os.WIFEXITED(wstatus) and os.WEXITSTATUS(wstatus) == fs.SETUP_FAILED):
            self.setup_failures = 0
        status, detail, message = verdict
        self.emit({"id": job.id, "status": status, "detail": detail, "message": message,
                   "duration_s": round(child.end - child.start, 6)})

    def classify(self, child: Child, wstatus: int, raw: bytes):
        """(status, detail, message); None: judge it again alone; "lost": it never ran, hand it to a new child."""
        job = child.job
        tail = child.out_tail.decode("utf-8", "replace").strip()[-500:]
        if not raw.startswith(fs.STARTED):
            if os.WIFEXITED(wstatus) and os.WEXITSTATUS(wstatus) == fs.SETUP_FAILED:
                return "crashed", "sandbox child failed to set up", "sandbox child failed to set up"
            return "lost"  # killed or stopped by a neighbour while it waited for this program
        raw = raw[len(fs.STARTED):]
        if child.why_killed == "timeout":
            return "timeout", f"killed after the {job.timeout_s:g}s wall-clock limit", "timed out"
        if child.why_killed == "output":
            limit = self.cfg.output_limit_mb
            return "failed", f"output limit exceeded (> {limit} MiB)", "output limit exceeded"
        result = fs.decode_result(raw)
        if os.WIFEXITED(wstatus):
            code = os.WEXITSTATUS(wstatus)
            if code == 0 and result is not None and result[0] == child.nonce:
                return result[1:]
            msg = f"exited with code {code} before the tests finished"
            return ("failed" if code == 0 else "error"), msg + (f"; output: {tail}" if tail else ""), msg
        sig = os.WTERMSIG(wstatus)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        if sig == signal.SIGXCPU:
            return "timeout", "CPU time limit exceeded (SIGXCPU)", "timed out"
        if sig not in SELF_INFLICTED and child.overlapped and not job.retried:
            return None
        msg = f"killed by {name}"
        if sig == signal.SIGKILL:
            msg += " (possibly out of memory)"
            return "oom" if "MemoryError" in tail else "crashed", msg, msg
        return "crashed", msg + (f"; output: {tail}" if tail else ""), msg

    def slot_intact(self, scratch: str) -> bool:
        """Is ``scratch`` still the directory (same inode, mode 1777) that the child was given?"""
        try:
            st = os.lstat(scratch)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self.slot_ids.get(scratch) and stat.S_IMODE(st.st_mode) == 0o1777

    def sweep(self, scratch: str, orphans: bool = True) -> None:
        """Kill orphans re-parented to us (escaped daemons) and empty a scratch directory."""
        known = {self.zygote_pid, *self.running, *self.exited, *self.dropped, *(c.pid for c in self.ready)}
        for _ in range(50 if orphans else 0):
            strays = [p for p in fs.children_of(self.pid) if p not in known]
            if not strays:
                break
            for p in strays:
                fs.kill_tree(p)
            for p in strays:
                try:
                    os.waitpid(p, 0)
                except ChildProcessError:
                    pass
        try:  # a program may have removed, replaced (a symlink) or locked (chmod 000) its directory
            if not stat.S_ISDIR(os.lstat(scratch).st_mode):
                os.unlink(scratch)
        except OSError:
            pass
        try:
            os.makedirs(scratch, exist_ok=True)
            os.chmod(scratch, 0o1777)
            st = os.lstat(scratch)
            self.slot_ids[scratch] = (st.st_dev, st.st_ino)
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
        for slot in range(len(self.free_slots)):
            self.sweep(os.path.join(self.cfg.scratch, f"slot-{slot}"), orphans=False)  # creates it
        self.start_zygote()
        os.set_blocking(0, False)
        self.sel.register(0, selectors.EVENT_READ, ("stdin", None))
        self.emit({"ready": True, "pid": self.pid, "python": sys.version.split()[0],
                   "uid": os.getuid(), "net_isolated": self.cfg.net_isolated,
                   "drop_root": bool(self.cfg.drop_root and os.getuid() == 0),
                   "drop_root_skipped": self.cfg.drop_root_skipped})
        self.flush()
        while True:
            self.top_up()
            while self.can_start():
                self.start(self.queue.popleft())
            self.flush()
            if self.stdin_eof and not self.queue and not self.running and not self.exited:
                self.shut_down()
                return
            now = time.monotonic()
            wake = [c.deadline for c in self.running.values() if not c.killed_by_us]
            if self.asks:
                wake.append(self.asks[0][2] + self.ask_limit())
            if self.queue and len(self.ready) < self.cfg.workers and self.fork_retry_at > now:
                wake.append(self.fork_retry_at)
            timeout = max(0.0, min(wake) - now) if wake else None
            if timeout is None and self.running:
                timeout = 0.05  # killed children not yet exited
            for key, _ in self.sel.select(timeout):
                kind, child = key.data
                if kind == "exit":
                    if child.pidfd >= 0:
                        self.exited_event(child)
                elif kind == "zygote":
                    if key.fileobj is self.zygote:  # not one replaced earlier in this turn
                        self.read_answers()
                elif kind == "out":
                    if child.out_r >= 0 and child.pid in self.running:
                        self.read_output(child)
                elif kind == "in":
                    if child.job_w >= 0:
                        self.write_job(child)
                elif kind == "stdin":
                    self.read_stdin()
            now = time.monotonic()
            for child in list(self.running.values()):
                if now >= child.deadline and not child.killed_by_us:
                    if _is_stopped(child.pid) and not child.job.retried:  # a neighbour stopped it
                        child.disturbed = True
                        self.drop_ready()
                    self.kill(child, "timeout")
            if self.asks and now - self.asks[0][2] > self.ask_limit():
                self.replace_zygote()  # stopped from inside (a program sent it SIGSTOP)

    def shut_down(self) -> None:
        """No more programs: drop the ready children, stop the fork server, reap everything."""
        for child in self.ready:
            _kill_quietly(child.pid)
            self.sel.unregister(child.pidfd)
            self.discard(child)
        self.ready.clear()
        for kind, child, _ in self.asks:
            if kind == b"F":  # a child forked meanwhile reads EOF (or gets its parent-death signal)
                self.discard(child)
        self.sel.unregister(self.zygote)
        self.zygote.close()  # the server sees EOF and exits
        _waitpid(self.zygote_pid)
        while True:
            try:
                os.waitpid(-1, 0)  # its children, re-parented to us
            except ChildProcessError:
                return


def _fatal(why: str) -> None:
    """An infrastructure failure inside the sandbox: say why on stderr and exit (the host raises SandboxError)."""
    sys.stderr.write(f"sandbox worker: {why}; giving up\n")
    sys.stderr.flush()
    os._exit(fs.SETUP_FAILED)


def _kill_group(pid: int) -> None:
    """SIGKILL process group ``pid`` and the process itself (if it left the group)."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _waitpid(pid: int) -> int:
    """Wait status of ``pid`` (ours), or -1 when it is not our child (already reaped)."""
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return -1


def _isolate_network() -> bool:
    """Best effort: move the worker into a fresh network namespace (no interfaces up)."""
    if fs._libc is None:
        return False
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        return fs._libc.unshare(CLONE_NEWNET) == 0
    if fs._libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
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
    fs.prctl(fs.PR_SET_CHILD_SUBREAPER, 1)
    fs.prctl(fs.PR_SET_DUMPABLE, 0)  # programs run as our uid in docker: no ptrace, no /proc/<pid>/mem
    Worker(cfg).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
