"""The sandbox worker script on its own: start-up and shut-down edges the backends do not exercise."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from evaluators.sandbox.process import WORKER_PATH


def run_worker(tmp_path, stdin: bytes) -> subprocess.CompletedProcess:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return subprocess.run([sys.executable, "-I", "-S", str(WORKER_PATH), "--workers", "2", "--scratch", str(scratch)],
                          input=stdin, capture_output=True, timeout=60)


@pytest.mark.parametrize("stdin", [b"", b"\n\n"], ids=["eof", "blank-lines"])
def test_no_programs_means_a_clean_exit(tmp_path, stdin):
    """EOF before the fork server has even said hello: exit 0, say nothing on stderr."""
    proc = run_worker(tmp_path, stdin)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b""
    assert json.loads(proc.stdout.splitlines()[0])["ready"] is True


def test_programs_then_eof(tmp_path):
    lines = [json.dumps({"id": str(i), "source": "assert 1 + 1 == 2\n" if i % 2 else "assert False\n"}) for i in range(6)]
    proc = run_worker(tmp_path, ("\n".join(lines) + "\n").encode())
    assert proc.returncode == 0, proc.stderr.decode()
    verdicts = {v["id"]: v["status"] for v in map(json.loads, proc.stdout.splitlines()[1:])}
    assert verdicts == {str(i): "passed" if i % 2 else "failed" for i in range(6)}


def test_a_child_reaped_before_its_pid_arrives_frees_its_slot(tmp_path, monkeypatch):
    """The fork server's answer names a child that is already gone (swept as a stray, or killed by a
    program next door, and reaped): the worker frees its slot instead of dying on ``pidfd_open``."""
    import argparse
    import importlib.util
    import os

    spec = importlib.util.spec_from_file_location("sandbox_worker_under_test", WORKER_PATH)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    monkeypatch.setattr(worker.fs, "children_of", lambda pid: [])  # sweep nothing of pytest's own
    w = worker.Worker(argparse.Namespace(workers=1, scratch=str(tmp_path)))
    slot = w.free_slots.pop()
    child = worker.Child(slot, str(tmp_path / f"slot-{slot}"), w.gen)
    job_r, child.job_w = os.pipe()
    child.result_r, result_w = os.pipe()
    child.out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)  # reaped: no process has this pid any more

    w.forked(child, pid)

    assert child not in w.ready
    assert slot in w.free_slots
    assert child.pidfd == child.job_w == child.result_r == child.out_r == -1  # its pipes are closed
    for fd in (job_r, result_w, out_w):
        os.close(fd)
