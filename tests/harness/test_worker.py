"""The worker loop against a real storage, with trials that cost nothing (the loop is under test,
not training): concurrent workers never run one configuration twice, seeds are per trial, a
lost trial is failed, recorded and retried, and the search space can run out."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

SMOKE = ["+sweep=smoke", "eval.sandbox=process", "tracking=none"]
SPACE = {"method.r": {"type": "categorical", "choices": [4, 8, 16]},
         "method.alpha_ratio": {"type": "categorical", "choices": [1.0, 2.0]}}  # 6 configurations


def instant(trial, **context):
    """A trial that completes at once; its value depends on its parameters."""
    from optuna.trial import TrialState

    return TrialState.COMPLETE, [float(sum(v for v in trial.params.values()))], None, False


def _raw(compose_overrides: list[str], space: dict | None):
    from harness.config import compose

    raw = compose(compose_overrides)
    if space is not None:
        raw["search_space"] = space
    return raw


def _worker(overrides: list[str], space: dict | None) -> str | None:
    from harness.worker import run_worker

    return run_worker(_raw(overrides, space), overrides, progress=False, runner=instant).stop_reason


def run_workers(n: int, overrides: list[str], space: dict | None = None) -> list[str | None]:
    from harness.config import study_config
    from harness.study import open_study

    open_study(study_config(_raw(overrides, space)))  # the sweep entry creates the study before launching
    with mp.get_context("spawn").Pool(n) as pool:
        return pool.starmap(_worker, [(overrides, space)] * n)


def _trials(overrides: list[str], space=None):
    from harness.config import study_config
    from harness.study import open_study

    study, _ = open_study(study_config(_raw(overrides, space)))
    return study.get_trials(deepcopy=False)


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_concurrent_workers_never_run_a_configuration_twice(tmp_path, sampler):
    overrides = SMOKE + [f"runs_dir={tmp_path}", "storage=journal", "study.n_trials=6", f"study.sampler.name={sampler}",
                         "study.heartbeat_s=1", "study.grace_s=5"]
    run_workers(3, overrides, SPACE)
    trials = _trials(overrides, SPACE)
    ran = [t for t in trials if not t.user_attrs.get("discarded")]
    complete = [t for t in ran if t.state.name == "COMPLETE"]
    assert len(complete) == 6
    assert len({json.dumps(t.params, sort_keys=True) for t in ran}) == len(ran), [t.params for t in ran]
    for t in trials:
        if t.user_attrs.get("discarded"):
            assert t.state.name == "FAIL" and ("duplicate of trial" in t.user_attrs["discarded"] or "not needed" in t.user_attrs["discarded"])


def test_an_exhausted_search_space_stops_instead_of_repeating(tmp_path):
    overrides = SMOKE + [f"runs_dir={tmp_path}", "storage=journal", "study.n_trials=8", "study.sampler.name=random"]
    reasons = run_workers(2, overrides, SPACE)
    assert any(r and "search space exhausted" in r for r in reasons), reasons
    ran = [t for t in _trials(overrides, SPACE) if not t.user_attrs.get("discarded")]
    assert len(ran) == 6 and len({json.dumps(t.params, sort_keys=True) for t in ran}) == 6


def test_a_seeded_single_worker_study_is_reproducible(tmp_path):
    draws = []
    for run in ("a", "b"):
        overrides = SMOKE + [f"runs_dir={tmp_path / run}", "study.n_trials=5", "study.sampler.name=tpe", "study.sampler.seed=7"]
        run_workers(1, overrides)
        draws.append([t.params for t in _trials(overrides) if t.state.name == "COMPLETE"])
    assert draws[0] == draws[1] and len({json.dumps(p, sort_keys=True) for p in draws[0]}) == 5


def test_a_lost_trial_is_failed_recorded_and_retried(tmp_path):
    """A trial RUNNING with a stale lease (its worker died) is failed by the next worker, its
    record says why, and its parameters are re-run as a marked retry."""
    import time

    from optuna.trial import TrialState

    from harness.config import study_config
    from harness.liveness import LEASE_ATTR
    from harness.record import TrialRecord
    from harness.study import open_study

    overrides = SMOKE + [f"runs_dir={tmp_path}", "storage=journal", "study.n_trials=3", "study.heartbeat_s=1", "study.grace_s=2"]
    cfg = study_config(_raw(overrides, None))
    study, _ = open_study(cfg)
    dead = study.ask()
    dead.suggest_categorical("method.r", [4, 8])
    dead.suggest_float("train.learning_rate", 1e-3, 3e-3, log=True)
    dead.set_user_attr("worker", {"host": "gone", "pid": 1})
    study._storage.set_trial_system_attr(dead._trial_id, LEASE_ATTR, time.time() - 60)
    TrialRecord(cfg.dir / "trial-0", study="smoke", number=0, seed=0)  # manifest says "running"

    run_workers(1, overrides)
    trials = _trials(overrides)
    lost = trials[0]
    assert lost.state == TrialState.FAIL
    manifest = json.loads((cfg.dir / "trial-0" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["reason"].startswith("worker lost: no heartbeat since")
    assert "worker gone pid 1" in manifest["reason"]
    retries = [t for t in trials if t.user_attrs.get("retry_of") == 0]
    assert len(retries) == 1 and retries[0].params == lost.params and retries[0].state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3
    assert not [t for t in trials if t.state == TrialState.RUNNING]


def reaped_while_running(trial, **context):
    """A trial another worker failed as lost while it ran (its beats were late); it then finishes."""
    from optuna.trial import TrialState

    trial.study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    return TrialState.COMPLETE, [1.0], None, False


def test_a_result_told_after_the_trial_was_reaped_is_discarded_and_recorded_so(tmp_path):
    from harness.config import study_config
    from harness.worker import run_worker

    overrides = SMOKE + [f"runs_dir={tmp_path}", "storage=journal", "study.n_trials=1", "study.max_failures=1"]
    raw = _raw(overrides, None)
    result = run_worker(raw, overrides, progress=False, runner=reaped_while_running)
    assert result.failed == 1
    (trial,) = _trials(overrides)
    assert trial.state.name == "FAIL"
    m = json.loads((study_config(raw).dir / "trial-0" / "manifest.json").read_text())
    assert m["status"] == "failed" and "its result was discarded" in m["reason"]
