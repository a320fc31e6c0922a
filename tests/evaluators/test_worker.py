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
