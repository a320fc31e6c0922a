"""The contract every launcher meets (harness/launch/), run against each registered one.

N workers pull from one PostgreSQL study until n_trials are complete: no configuration twice,
every record agrees with Optuna, the leaderboard is written, exit 0. Detached, the command
returns at once and the workers finish the study on their own; ``harness.status`` follows it.

A new launcher is an entry in LAUNCHERS plus a case in CASES below (a test checks both lists agree).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from harness.launch import LAUNCHERS
from tests.conftest import REPO
from tests.harness.studycheck import assert_consistent, sweep

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


class Case(NamedTuple):
    marks: tuple[Any, ...]  # the services the launcher needs besides PostgreSQL
    overrides: Callable[[pytest.FixtureRequest], list[str]]  # the command's launcher overrides
    queued: Callable[[str], str]  # what is still queued for study `name` once its workers exited ("" when nothing)


def _slurm_overrides(request: pytest.FixtureRequest) -> list[str]:
    partition = request.getfixturevalue("slurm_partition")
    return ["launcher=slurm", f"launcher.partition={partition}", "launcher.cpus_per_task=1"]


def _squeue(name: str) -> str:
    return subprocess.run(["squeue", "-h", "-n", f"harness-{name}"], capture_output=True, text=True).stdout.strip()


# launcher.backend -> how the contract runs it
CASES: dict[str, Case] = {
    "local": Case((), lambda request: ["launcher=local"], queued=lambda name: ""),
    "slurm": Case((pytest.mark.slurm,), _slurm_overrides, queued=_squeue),
}
LAUNCHER_PARAMS = [pytest.param(name, marks=CASES[name].marks) for name in sorted(CASES)]


def test_every_registered_launcher_has_a_case_here():
    assert set(CASES) == set(LAUNCHERS)


def test_every_launcher_is_registered_with_a_config():
    for name, backend in LAUNCHERS.items():
        assert (REPO / "conf" / "launcher" / f"{name}.yaml").exists()
        assert backend.open().name == name


@pytest.mark.parametrize("launcher", LAUNCHER_PARAMS)
def test_workers_share_one_study_to_n_trials(launcher, tmp_path, postgres_url, request):
    env = {"HARNESS_POSTGRES_URL": postgres_url}
    name = f"contract-{launcher}-{uuid.uuid4().hex[:6]}"
    overrides = ["+sweep=smoke", f"runs_dir={tmp_path}", f"study.name={name}", "storage=postgres", "study.n_trials=6",
                 "launcher.n_workers=3", "eval.sandbox=process", "tracking=none", *CASES[launcher].overrides(request)]
    proc = sweep(*overrides, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = assert_consistent(overrides, n_trials=6, env=env)
    assert len(ran) == 6  # no failure, so no retry: six distinct configurations
    assert proc.stdout.count("] complete  ") == 6
    assert f"study '{name}': 6/6 complete, 0 pruned, 0 failed" in proc.stdout
    rows = list(csv.DictReader((tmp_path / name / "leaderboard.csv").open()))
    assert [r["status"] for r in rows] == ["complete"] * 6


@pytest.mark.parametrize("launcher", LAUNCHER_PARAMS)
def test_detached_workers_finish_the_study_and_status_follows_it(launcher, tmp_path, postgres_url, request):
    env = {"HARNESS_POSTGRES_URL": postgres_url}
    name = f"detached-{launcher}-{uuid.uuid4().hex[:6]}"
    overrides = ["+sweep=smoke", f"runs_dir={tmp_path}", f"study.name={name}", "storage=postgres", "study.n_trials=2",
                 "launcher.n_workers=2", "launcher.wait=false", "eval.sandbox=process", "tracking=none",
                 *CASES[launcher].overrides(request)]
    t0 = time.time()
    proc = sweep(*overrides, env=env, timeout=120)
    assert proc.returncode == 0 and "detached" in proc.stdout, proc.stdout + proc.stderr
    assert time.time() - t0 < 60

    def status() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness.status", *overrides], cwd=REPO, capture_output=True, text=True,
                              timeout=60, env={**os.environ, **env})

    deadline = time.time() + 300
    while (st := status()).returncode == 3 and time.time() < deadline:
        time.sleep(2)
    assert st.returncode == 0, st.stdout + st.stderr
    assert f"study '{name}': 2/2 complete" in st.stdout
    # the workers exit once the study is done
    while time.time() < deadline:
        left = subprocess.run(["pgrep", "-f", f"runs_dir={tmp_path}"], capture_output=True, text=True).stdout.strip()
        queued = CASES[launcher].queued(name)
        if not left and not queued:
            break
        time.sleep(1)
    assert_consistent(overrides, n_trials=2, env=env)
