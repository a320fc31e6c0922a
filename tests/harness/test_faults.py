"""Be the cluster: kill -9 a worker mid-trial, restart the database, scancel an array task.

Each time the study still reaches n_trials complete, the lost trial is failed (record and
Optuna agree) and retried as a marked retry, nothing is left running, and no container or
worker process is left behind. Trials are the smoke sweep's (seconds each), lengthened just
enough to be caught mid-way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid

import pytest

from tests.harness.studycheck import assert_consistent, manifest, running_trial_of, start_sweep, sweep, wait_for

pytestmark = pytest.mark.integration

FAST_LIVENESS = ["study.heartbeat_s=1", "study.grace_s=6"]


def _name(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:6]}"


def _lost_and_retried(ran, cfg_dir, lost_number: int) -> None:
    lost = manifest(cfg_dir, lost_number)
    assert lost["status"] == "failed" and lost["reason"].startswith(("worker lost", "preempted")), lost["reason"]
    retries = [t for t in ran if t.user_attrs.get("retry_of") == lost_number]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert manifest(cfg_dir, retries[0].number)["retry_of"] == lost_number


@pytest.mark.docker
def test_kill_9_of_a_local_worker_mid_trial(tmp_path):
    name = _name("kill-local")
    overrides = ["+sweep=smoke", f"runs_dir={tmp_path}", f"study.name={name}", "storage=journal", "launcher.n_workers=2",
                 "study.n_trials=3", "eval.sandbox=docker", "tracking=wandb", "train.max_steps=120", *FAST_LIVENESS]
    proc = start_sweep(*overrides)
    study_dir = tmp_path / name

    def evaluating():  # a trial whose sandbox container is up: killing now must not leave it behind
        m = running_trial_of(study_dir, phase_file="adapter/adapter_config.json")
        if not m:
            return None
        found = subprocess.run(["docker", "ps", "-q", "--filter", f"label=harness.study={name}",
                                "--filter", f"label=harness.trial={m['trial']}"], capture_output=True, text=True)
        return m if found.stdout.strip() else None

    victim = wait_for(evaluating, 300, "a trial in its evaluation", proc)
    killed_at = time.time()
    os.kill(victim["worker"]["pid"], signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    assert f"[trial {victim['trial']}] LOST      worker lost: no heartbeat" in out
    ran = assert_consistent(overrides, n_trials=3)
    _lost_and_retried(ran, study_dir, victim["trial"])
    lost = manifest(study_dir, victim["trial"])
    assert lost["end"] - killed_at < 6 + 10  # failed within the grace period (plus one poll)
    # its W&B run was finished as failed (a resumed run with the same id, offline)
    from harness.tracking.wandb_tracker import read_offline_run

    # -<id>, or -<id>-1 in the same second
    run_dirs = [d for d in (study_dir / "wandb").glob("offline-run-*") if f"-{lost['tracking_run_id']}" in d.name]
    assert len(run_dirs) == 2
    assert any(read_offline_run(d)["summary"].get("status") == "failed" for d in run_dirs)


@pytest.mark.postgres
def test_postgres_restart_mid_study(tmp_path, postgres_url, pg_restart):
    name = _name("pg-restart")
    env = {"HARNESS_POSTGRES_URL": postgres_url}
    overrides = ["+sweep=smoke", f"runs_dir={tmp_path}", f"study.name={name}", "storage=postgres", "launcher.n_workers=2",
                 "study.n_trials=4", "eval.sandbox=process", "tracking=none", "train.max_steps=100", *FAST_LIVENESS]
    proc = start_sweep(*overrides, env=env)
    wait_for(lambda: running_trial_of(tmp_path / name), 300, "a running trial", proc)
    pg_restart(down_s=2)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    assert "storage unreachable" in err  # the workers noticed, waited, and went on
    assert_consistent(overrides, n_trials=4, env=env)


@pytest.mark.postgres
@pytest.mark.slurm
def test_slurm_workers_survive_kill_9_and_scancel_and_keep_no_credential(tmp_path, postgres_url, slurm_partition):
    """Three array tasks; one worker is SIGKILLed mid-trial, another array task is scancelled.
    The survivor finishes the study. No file the study wrote holds the database password."""
    from sqlalchemy.engine import make_url

    name = _name("slurm-faults")
    env = {"HARNESS_POSTGRES_URL": postgres_url}
    password = make_url(postgres_url).password
    assert password
    overrides = ["+sweep=smoke", f"runs_dir={tmp_path}", f"study.name={name}", "storage=postgres", "launcher=slurm",
                 "launcher.n_workers=3", "launcher.cpus_per_task=1", f"launcher.partition={slurm_partition}",
                 "study.n_trials=5", "eval.sandbox=process", "tracking=wandb", "train.max_steps=150", *FAST_LIVENESS]
    proc = start_sweep(*overrides, env=env)
    study_dir = tmp_path / name
    first = wait_for(lambda: running_trial_of(study_dir), 300, "a running trial", proc)
    os.kill(first["worker"]["pid"], signal.SIGKILL)

    def another():
        m = running_trial_of(study_dir)
        return m if m and m["worker"]["slurm_job"] != first["worker"]["slurm_job"] else None

    second = wait_for(another, 300, "a trial on another array task", proc)
    subprocess.run(["scancel", second["worker"]["slurm_job"]], check=True)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    ran = assert_consistent(overrides, n_trials=5, env=env)
    _lost_and_retried(ran, study_dir, first["trial"])
    _lost_and_retried(ran, study_dir, second["trial"])
    assert manifest(study_dir, second["trial"])["reason"].startswith("preempted")  # scancel's SIGTERM, handled at once
    queue = subprocess.run(["squeue", "-h", "-n", f"harness-{name}"], capture_output=True, text=True)
    assert queue.stdout.strip() == ""
    # credentials never leave the environment
    leaked = subprocess.run(["grep", "-rl", "--", password, str(tmp_path)], capture_output=True, text=True)
    assert leaked.stdout == "", f"the password is in: {leaked.stdout}"
    assert password not in out + err


def test_every_trial_failing_exits_1_with_one_summary_line(tmp_path, compose, monkeypatch, capsys):
    import harness.train
    from harness.sweep import run_sweep

    def broken(**kwargs):
        raise RuntimeError("boom: every trial")

    monkeypatch.setattr(harness.train, "train", broken)
    overrides = ["+sweep=smoke", "eval.sandbox=process", f"runs_dir={tmp_path}", "tracking=none"]
    assert run_sweep(compose(overrides), overrides) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("study 'smoke' stopped without n_trials complete: 0/2 complete, 0 pruned, 2 failed; "
                       "most common failure (2x): RuntimeError: boom: every trial")


@pytest.mark.parametrize("args, expected", [
    (["data=alpaca"], "data.path='???': this data config needs a file or dataset"),
    (["data=alpaca", "data.path=/nonexistent/train.jsonl"], "no such file"),
    (["model=qwen2.5-coder-0.5b"], "the hub (http://127.0.0.1:9) is unreachable"),
])
def test_what_every_trial_would_hit_fails_before_any_training(tmp_path, args, expected):
    t0 = time.time()
    proc = sweep("+sweep=smoke", f"runs_dir={tmp_path}", *args, env={"HF_HUB_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9",
                                                                     "HF_HOME": str(tmp_path / "hf")}, timeout=60)
    assert time.time() - t0 < 10
    assert proc.returncode in (1, 2) and expected in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1  # one line, no traceback
    assert not list((tmp_path / "smoke").glob("trial-*"))


def test_a_malformed_dataset_fails_before_any_training(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n{"instruction": oops}\n')
    proc = sweep("+sweep=smoke", f"runs_dir={tmp_path}", "data=alpaca", f"data.path={data}", timeout=60)
    assert proc.returncode == 2
    assert f"{data}:2: malformed JSON" in proc.stderr and proc.stderr.count("\n") == 1
