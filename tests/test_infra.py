"""The real services the marked tests use: a fresh PostgreSQL database per test, a SLURM cluster
that runs several array tasks at once (fixtures in tests/conftest.py, servers from scripts/)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.postgres
def test_postgres_url_is_a_fresh_database_optuna_can_use(postgres_url):
    import optuna

    assert postgres_url.startswith("postgresql+psycopg://")
    storage = optuna.storages.RDBStorage(postgres_url)
    try:
        assert storage.get_all_studies() == []  # fresh: nothing from earlier tests or runs
        study = optuna.create_study(study_name="infra-probe", storage=storage)
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=2)
        assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["infra-probe"]
        assert len(optuna.load_study(study_name="infra-probe", storage=storage).trials) == 2
    finally:
        storage.engine.dispose()


@pytest.mark.postgres
def test_pg_restart_cuts_connections_and_the_server_comes_back(postgres_url, pg_restart):
    import psycopg

    url = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (1)")
        pg_restart()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with psycopg.connect(url) as conn:  # data survives the restart
        assert conn.execute("SELECT x FROM kept").fetchall() == [(1,)]


def _running_tasks(job_id: str) -> int:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-t", "RUNNING", "-o", "%i"],
                         capture_output=True, text=True, timeout=20)
    return len(out.stdout.split())


@pytest.mark.slurm
@pytest.mark.timeout(120)
def test_slurm_runs_four_array_tasks_at_once(slurm_partition, tmp_path):
    job_id = subprocess.run(
        ["sbatch", "--parsable", "--array=0-3", "-p", slurm_partition, "-c", "1",
         "-o", str(tmp_path / "%A_%a.out"), "--wrap", "sleep 60"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip().split(";")[0]
    try:
        deadline, most = time.monotonic() + 60, 0
        while time.monotonic() < deadline and most < 4:
            most = max(most, _running_tasks(job_id))
            time.sleep(0.5)
        assert most == 4, f"at most {most} of 4 array tasks ran at once (squeue -j {job_id})"
    finally:
        subprocess.run(["scancel", job_id], timeout=30)


@pytest.mark.slurm
@pytest.mark.timeout(120)
def test_slurm_job_sees_the_submitters_environment_and_the_venv(slurm_partition, tmp_path):
    out = tmp_path / "job.out"
    env = {**os.environ, "HARNESS_INFRA_PROBE": "from-the-submitter"}
    script = f'echo "probe=$HARNESS_INFRA_PROBE"; cd {REPO} && {sys.executable} -c "import harness; print(\'import ok\')"'
    subprocess.run(
        ["sbatch", "--wait", "-p", slurm_partition, "-o", str(out), "--wrap", script],
        capture_output=True, text=True, check=True, timeout=90, env=env,
    )
    text = out.read_text()
    assert "probe=from-the-submitter" in text and "import ok" in text, text
