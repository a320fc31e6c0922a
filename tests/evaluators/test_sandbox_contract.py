"""The sandbox contract, run against every backend in ``evaluators.sandbox.BACKENDS`` (STYLE.md #10).

Every hostile program in tests/evaluators/hostile/programs.py must end as a non-passed
verdict within bounded time; the honest programs in the same batch must still be judged
correctly; afterwards no container, process or file is left behind. The Docker backend
must contain everything; the process backend's documented weaknesses are xfailed.

A new backend is an entry in BACKENDS plus a case in CASES below (a test checks both lists agree).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from evaluators.sandbox import BACKENDS, Program, open_sandbox
from tests.evaluators.hostile.programs import (
    HOSTILE,
    PROCESS_SKIP_NON_ROOT,
    PROCESS_WEAKNESSES,
    PROCESS_WEAKNESSES_NON_ROOT,
)

TIMEOUT_S = 2.0
BOUND_S = TIMEOUT_S + 20.0  # a hostile batch of three must be judged within this
GOOD = "def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\n"
BAD = "def add(a, b):\n    return a * b\n\nassert add(2, 3) == 5\n"
ROOT = os.getuid() == 0


def docker_ready() -> str | None:
    """None when the docker backend can run here, else the reason it cannot."""
    return BACKENDS["docker"].unavailable()


def _container_exists(container_id: str) -> bool:
    import docker

    client = docker.from_env()
    try:
        client.containers.get(container_id)
        return True
    except docker.errors.NotFound:
        return False
    finally:
        client.close()


class Case(NamedTuple):
    marks: tuple[Any, ...]  # the service a backend needs (the docker marker: a skip is a failure under HARNESS_REQUIRE_DOCKER=1)
    weaknesses: dict[str, str]  # hostile program -> why this backend cannot contain it (documented, xfailed)
    weaknesses_non_root: dict[str, str]  # the same, when the tests do not run as root
    skip_non_root: dict[str, str]  # too dangerous to run against this backend without root
    marker: Callable[[Any], str]  # what identifies one open sandbox's processes (its container id, its run directory)
    gone: Callable[[str], bool]  # nothing of that sandbox is left


# backend name -> what the contract expects of it
CASES: dict[str, Case] = {
    "docker": Case((pytest.mark.docker,), {}, {}, {}, marker=lambda sb: sb.container_id,
                   gone=lambda marker: not _container_exists(marker)),
    "process": Case((), PROCESS_WEAKNESSES, PROCESS_WEAKNESSES_NON_ROOT, PROCESS_SKIP_NON_ROOT,
                    marker=lambda sb: sb.run_dir, gone=lambda marker: not Path(marker).exists()),
}  # fmt: skip
BACKEND_PARAMS = [pytest.param(name, marks=CASES[name].marks) for name in sorted(CASES)]


def test_every_registered_backend_has_a_case_here():
    assert set(CASES) == set(BACKENDS)


def test_auto_prefers_a_backend_that_is_ready():
    """``auto``: docker where it is ready, else the process backend, with a warning naming what is missing."""
    if docker_ready() is None:
        with open_sandbox("auto", workers=1) as sb:
            assert sb.name == "docker"
    else:
        with pytest.warns(UserWarning, match="weaker 'process' sandbox on this host .*WEAK isolation"), open_sandbox("auto", workers=1) as sb:
            assert sb.name == "process"


def test_auto_takes_the_first_backend_that_can_run_strongest_first(monkeypatch):
    """``auto`` walks the registry in order; a warning names what each stronger backend lacks, and
    nothing that can run is an error (never a silent fallback to running code unsandboxed)."""
    import evaluators.sandbox as sandbox_module
    from evaluators.sandbox import SandboxBackend, SandboxError

    def entry(name: str, reason: str | None) -> SandboxBackend:
        return SandboxBackend(name, lambda **options: name, summary=f"{name}'s isolation", unavailable=lambda: reason)

    monkeypatch.setattr(sandbox_module, "BACKENDS", {"strong": entry("strong", "no strong here"), "middle": entry("middle", None),
                                                     "weak": entry("weak", None)})
    with pytest.warns(UserWarning, match=r"no strong here; running generated code with the weaker 'middle' sandbox "
                                         r"on this host \(middle's isolation\)"):
        assert open_sandbox("auto") == "middle"
    monkeypatch.setattr(sandbox_module, "BACKENDS", {"strong": entry("strong", None), "weak": entry("weak", None)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the strongest backend can run: no warning
        assert open_sandbox("auto") == "strong"
    monkeypatch.setattr(sandbox_module, "BACKENDS", {"strong": entry("strong", "no strong here"), "weak": entry("weak", "no weak")})
    with pytest.raises(SandboxError, match="no sandbox backend can run here: no strong here; no weak"):
        open_sandbox("auto")


@pytest.fixture(scope="module")
def host():
    """Secrets and paths on the host that no program should reach."""
    secret = secrets.token_hex(16)
    env_name = f"HOSTILE_SECRET_{secrets.token_hex(4).upper()}"
    base = Path(tempfile.mkdtemp(prefix="hostile-host-"))
    os.chmod(base, 0o755)
    secret_file = base / "secret.txt"
    secret_file.write_text(secret)
    os.chmod(secret_file, 0o600)
    public_file = base / "public.txt"
    public_file.write_text(secret)
    os.chmod(public_file, 0o644)
    outside = base / "outside"
    outside.mkdir(mode=0o755)
    marker = Path(tempfile.gettempdir()) / f"hostile-marker-{secret[:8]}"
    os.environ[env_name] = secret
    prelude = (
        f"SECRET = {secret!r}\nSECRET_FILE = {str(secret_file)!r}\nPUBLIC_FILE = {str(public_file)!r}\n"
        f"SECRET_ENV = {env_name!r}\nOUTSIDE_DIR = {str(outside)!r}\nMARKER = {str(marker)!r}\n"
    )
    yield {"prelude": prelude, "outside": outside, "marker": marker}
    os.environ.pop(env_name, None)
    for leftover in (marker, Path(f"{marker}.tmp"), Path(f"{marker}.escaped")):
        leftover.unlink(missing_ok=True)
    for p in sorted(base.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    base.rmdir()


def open_backend(kind: str):
    if reason := BACKENDS[kind].unavailable():
        pytest.skip(reason)
    return open_sandbox(kind, workers=2, memory_mb=512)


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def sandbox(request, host):
    with open_backend(request.param) as sb:
        yield sb


def expected_weakness(backend: str, name: str) -> str | None:
    case = CASES[backend]
    return case.weaknesses.get(name) or (None if ROOT else case.weaknesses_non_root.get(name))


def skipped(backend: str, name: str) -> str | None:
    return None if ROOT else CASES[backend].skip_non_root.get(name)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_is_contained(sandbox, host, name):
    if reason := skipped(sandbox.name, name):
        pytest.skip(reason)
    programs = [
        Program("hostile", host["prelude"] + HOSTILE[name], timeout_s=TIMEOUT_S),
        Program("good", GOOD, timeout_s=TIMEOUT_S),
        Program("bad", BAD, timeout_s=TIMEOUT_S),
    ]
    start = time.monotonic()
    hostile, good, bad = sandbox.run(programs)
    elapsed = time.monotonic() - start

    assert elapsed < BOUND_S, f"{name} took {elapsed:.1f}s"
    assert good.status == "passed", f"honest program misjudged next to {name}: {good}"
    assert bad.status == "failed", f"wrong program misjudged next to {name}: {bad}"
    weakness = expected_weakness(sandbox.name, name)
    if hostile.passed and weakness:
        pytest.xfail(f"{sandbox.name} backend cannot contain {name}: {weakness}")
    assert not hostile.passed, f"{name} got through: {hostile}"
    assert hostile.status in ("failed", "error", "timeout", "oom", "crashed")


def test_timeouts_are_enforced_from_outside(sandbox, host):
    (v,) = sandbox.run([Program("spin", host["prelude"] + HOSTILE["ignore_sigterm_sigalrm"], timeout_s=1.0)])
    assert v.status == "timeout" and v.result == "timed out"
    assert 0.9 <= v.duration_s < 3.0


@pytest.mark.parametrize("signal_name", ["SIGSTOP", "SIGKILL"])
def test_a_stopped_or_killed_fork_server_is_replaced(sandbox, signal_name):
    """A program's parent is the worker's fork server; stopping or killing it costs time, never verdicts."""
    attack = f"import os, signal\nos.kill(os.getppid(), signal.{signal_name})\nassert False\n"
    programs = [Program("attack", attack, timeout_s=TIMEOUT_S), Program("good", GOOD), Program("bad", BAD)]
    attack_v, good, bad = sandbox.run(programs)
    assert not attack_v.passed and good.status == "passed" and bad.status == "failed", (attack_v, good, bad)
    assert [v.status for v in sandbox.run([Program("g", GOOD), Program("b", BAD)])] == ["passed", "failed"]


def test_a_program_cannot_break_its_neighbours_scratch(sandbox):
    """Programs share a uid in docker: one that removes, locks or symlinks its neighbours' scratch
    directories must not change the verdict of a neighbour that writes files there."""
    writes = "open('f.txt', 'w').write('x')\nassert open('f.txt').read() == 'x'\n"
    programs = [Program("attack", HOSTILE["break_scratch_dirs"], timeout_s=TIMEOUT_S)]
    programs += [Program(f"writer-{i}", writes, timeout_s=TIMEOUT_S) for i in range(8)]
    attack, *writers = sandbox.run(programs)
    assert not attack.passed
    assert [w.status for w in writers] == ["passed"] * 8, writers


def _processes_of(marker: str) -> list[int]:
    """Processes that belong to one sandbox: ``marker`` (its run directory, or its container id)
    appears in their cwd, environment or cgroup. Other users' sandboxes do not count."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = ""
        blobs = [cwd.encode()]
        for name in ("environ", "cgroup"):
            try:
                blobs.append(Path(f"/proc/{pid}/{name}").read_bytes())
            except OSError:
                pass
        if any(marker.encode() in b for b in blobs):
            out.append(int(pid))
    return out


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_whole_suite_in_one_batch_leaves_nothing_behind(backend, host):
    """All hostile programs in one batch, interleaved with honest ones; then look for what is left."""
    names = [n for n in sorted(HOSTILE) if not skipped(backend, n)]
    programs = []
    for n in names:
        programs += [Program(n, host["prelude"] + HOSTILE[n], timeout_s=TIMEOUT_S), Program(f"good-{n}", GOOD)]
    with open_backend(backend) as sb:
        marker = CASES[backend].marker(sb)
        verdicts = sb.run(programs)
        assert _processes_of(marker), "the marker should find the live sandbox"
    for v in verdicts:
        if v.id.startswith("good-"):
            assert v.status == "passed", v
        elif not expected_weakness(backend, v.id):
            assert not v.passed, v

    time.sleep(3.5)  # longer than any daemon in the suite sleeps before writing its marker
    assert _processes_of(marker) == []
    assert CASES[backend].gone(marker)
    assert not host["marker"].exists() and not Path(f"{host['marker']}.escaped").exists()
    assert list(host["outside"].iterdir()) == []
