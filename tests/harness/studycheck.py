"""Checks shared by the launcher and fault-injection tests: what must hold after any study run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO

STATUS_OF = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}


def sweep(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.sweep", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def start_sweep(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.sweep", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def study_trials(overrides: list[str], env: dict | None = None):
    """The Optuna trials of the study these overrides name (read in this process)."""
    from harness.config import compose, study_config
    from harness.study import open_study

    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        cfg = study_config(compose(list(overrides)))
        study, _ = open_study(cfg, per_trial_seed=False)
        return cfg, study.get_trials(deepcopy=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def manifest(study_dir: Path, number: int) -> dict:
    return json.loads((study_dir / f"trial-{number}" / "manifest.json").read_text())


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the sweep ended before {what}: {proc.communicate()}")
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def running_trial_of(study_dir: Path, *, phase_file: str = "history.jsonl") -> dict | None:
    """The manifest of a trial that is running and has reached ``phase_file`` (a worker to kill)."""
    for d in sorted(study_dir.glob("trial-*")):
        try:
            m = json.loads((d / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        if m.get("status") == "running" and (d / phase_file).exists() and (d / phase_file).stat().st_size > 0 and m.get("worker"):
            return m
    return None


def assert_consistent(overrides: list[str], *, n_trials: int, env: dict | None = None) -> list:
    """The study reached n_trials complete; every trial that ran has a record agreeing with
    Optuna; nothing is left running; configurations repeat only as marked retries; no sandbox
    container or worker process of this study is left behind. Returns the trials that ran."""
    cfg, trials = study_trials(overrides, env)
    ran = [t for t in trials if not t.user_attrs.get("discarded")]
    assert sum(t.state.name == "COMPLETE" for t in ran) == n_trials, [(t.number, t.state.name) for t in ran]
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")], "trials left running or waiting"
    for t in ran:
        m = manifest(cfg.dir, t.number)
        assert m["status"] == STATUS_OF[t.state.name], (t.number, m["status"], t.state.name, m.get("reason"))
    recorded = {int(d.name.split("-")[1]) for d in cfg.dir.glob("trial-*")}
    assert recorded == {t.number for t in ran}, (recorded, [t.number for t in ran])
    by_params: dict[str, int] = {}
    for t in ran:
        key = json.dumps(t.params, sort_keys=True)
        retry_of = t.user_attrs.get("retry_of")
        if retry_of is not None:
            original = next(o for o in ran if o.number == retry_of)
            assert original.params == t.params and original.state.name == "FAIL"
            continue
        assert key not in by_params, f"trials {by_params.get(key)} and {t.number} ran the same configuration"
        by_params[key] = t.number
    left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=harness.study={cfg.name}"], capture_output=True, text=True)
    assert left.stdout.strip() == "", f"sandbox containers left behind: {left.stdout}"
    procs = subprocess.run(["pgrep", "-f", f"harness.worker.*runs_dir={cfg.runs_dir}"], capture_output=True, text=True)
    assert procs.stdout.strip() == "", f"worker processes left behind: {procs.stdout}"
    return ran
