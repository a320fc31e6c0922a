"""The sweep end to end on the embedded default: records, resume, SIGINT, failures, W&B offline, TensorBoard."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

SMOKE = ["+sweep=smoke", "eval.sandbox=process"]


def sweep(runs: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "harness.sweep", *SMOKE, f"runs_dir={runs}", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )


def manifest(trial_dir: Path) -> dict:
    return json.loads((trial_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    proc = sweep(runs, "tracking=wandb")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return runs / "smoke", proc


def test_every_trial_writes_the_full_record(smoke_run):
    study_dir, _ = smoke_run
    trials = sorted(study_dir.glob("trial-*"))
    assert len(trials) == 2
    for t in trials:
        m = manifest(t)
        assert m["status"] == "complete" and m["reason"] is None
        assert m["git"]["sha"] and isinstance(m["git"]["dirty"], bool)
        assert m["versions"]["torch"] and m["versions"]["optuna"]
        assert m["data_hash"] and m["model_hash"].startswith("builtin:")
        assert m["end"] > m["start"]
        assert {"setup", "data", "train", "generate", "execute", "record"} <= set(m["timings_s"])
        assert m["sandbox"]["backend"] == "process" and "weak" in m["sandbox"]["isolation"].lower()
        history = [json.loads(line) for line in (t / "history.jsonl").read_text().splitlines()]
        assert any("train_loss" in r for r in history) and any("eval_loss" in r for r in history)
        assert (t / "adapter" / "adapter_model.safetensors").exists()
        assert (t / "config.yaml").read_text().startswith("model:")
        metrics = json.loads((t / "metrics.json").read_text())
        assert 0.0 <= metrics["toy/pass@1"] <= 1.0
        assert metrics["trainable_params"] > 0 and metrics["eval_loss"] > 0
        samples = (t / "eval" / "toy" / "samples.jsonl").read_text().splitlines()
        results = [json.loads(line) for line in (t / "eval" / "toy" / "results.jsonl").read_text().splitlines()]
        assert len(samples) == len(results) == 12  # smoke: 12 tasks x 1 sample
        assert {"task_id", "completion", "passed", "status", "duration_s"} <= set(results[0])
        ev = json.loads((t / "eval" / "toy" / "metrics.json").read_text())
        assert ev["pass@1"] == pytest.approx(metrics["toy/pass@1"])
        assert ev["generation"]["n_samples"] == 1
        # the probe (docs/probe.md): its own history rows, its sample generations, its set named in the manifest
        probes = [r for r in history if "probe/pass@1" in r]
        assert [r["step"] for r in probes] == [15, 30] and all(r["probe/pass@1_se"] >= 0 for r in probes)
        assert metrics["probe/pass@1"] == probes[-1]["probe/pass@1"] and m["kept_step"] == 30
        assert m["probe"]["split"] == "validation" and len(m["probe"]["task_ids"]) == 24 and "probe" in m["timings_s"]
        shown = [json.loads(line) for line in (t / "probe_samples.jsonl").read_text().splitlines()]
        assert [s["step"] for s in shown] == [15] * 3 + [30] * 3 and {"prompt", "completion", "status"} <= set(shown[0])


def test_trials_differ_and_params_are_recorded(smoke_run):
    study_dir, _ = smoke_run
    params = [manifest(t)["params"] for t in sorted(study_dir.glob("trial-*"))]
    assert params[0] != params[1]
    for t, p in zip(sorted(study_dir.glob("trial-*")), params):
        cfg = (t / "config.yaml").read_text()
        assert f"r: {p['method.r']}" in cfg


def test_leaderboard_is_printed_and_written(smoke_run):
    study_dir, proc = smoke_run
    assert "toy/pass@1" in proc.stdout and "rank" in proc.stdout
    rows = list(csv.DictReader((study_dir / "leaderboard.csv").open()))
    assert [r["status"] for r in rows] == ["complete", "complete"]
    assert float(rows[0]["toy/pass@1"]) >= float(rows[1]["toy/pass@1"])
    assert {"method", "diagnosis", "param:method.r", "eval_loss", "trainable_params", "wall_time_s"} <= set(rows[0])
    assert rows[0]["diagnosis"]
    assert "| rank |" in (study_dir / "leaderboard.md").read_text()


def test_one_concise_line_per_trial(smoke_run):
    _, proc = smoke_run
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[trial ")]
    assert len(lines) == 2 and all("complete" in line and "toy/pass@1=" in line for line in lines)


def test_wandb_offline_run_per_trial_reads_back(smoke_run):
    from harness.tracking.wandb_tracker import read_offline_run

    study_dir, _ = smoke_run
    for t in sorted(study_dir.glob("trial-*")):
        m = manifest(t)
        run = read_offline_run(Path(m["tracking_run"]))
        metrics = json.loads((t / "metrics.json").read_text())
        assert run["group"] == "smoke" and run["name"] == f"smoke/trial-{m['trial']}"
        assert run["config"]["method"]["r"] == m["params"]["method.r"]
        assert run["config"]["train"]["learning_rate"] == pytest.approx(m["params"]["train.learning_rate"])
        assert [r["train_loss"] for r in run["history"] if "train_loss" in r]
        assert run["summary"]["toy/pass@1"] == pytest.approx(metrics["toy/pass@1"])
        assert run["summary"]["status"] == "complete"
    runs = [read_offline_run(d) for d in (study_dir / "wandb").glob("offline-run-*")]
    assert sorted(r["job_type"] for r in runs) == ["study", "trial", "trial"]


def test_wandb_study_run_and_trial_tables_read_back(smoke_run):
    from harness.tracking.wandb_tracker import read_offline_run, read_offline_table

    study_dir, _ = smoke_run
    runs = {d: read_offline_run(d) for d in (study_dir / "wandb").glob("offline-run-*")}
    (study_dir_run, study_run), = [(d, r) for d, r in runs.items() if r["job_type"] == "study"]
    assert study_run["group"] == "smoke" and study_run["name"] == "smoke/study"
    columns, rows = read_offline_table(study_dir_run, "leaderboard")
    assert {"rank", "trial", "status", "toy/pass@1", "diagnosis"} <= set(columns)
    assert sorted(row[columns.index("trial")] for row in rows) == [0, 1]  # one row per trial
    assert study_run["summary"]["trials/complete"] == 2 and study_run["summary"]["best_trial"] in (0, 1)
    assert any(f.endswith(".plotly.json") for f in study_run["files"]) and any("report" in f for f in study_run["files"])
    for t in sorted(study_dir.glob("trial-*")):
        run_dir = Path(manifest(t)["tracking_run"])
        columns, rows = read_offline_table(run_dir, "toy/problems")
        assert columns == ["task_id", "n", "c", "pass_rate"] and len(rows) == 12
        columns, rows = read_offline_table(run_dir, "toy/samples")
        assert {"prompt", "completion", "verdict"} <= set(columns) and len(rows) == 12
        (artifact,) = [a for a in read_offline_run(run_dir)["artifacts"] if a["type"] == "model"]
        assert any(e["ref"] and e["ref"].startswith("file://") for e in artifact["entries"])
        assert "tracking_warnings" not in manifest(t)


def test_report_is_written_and_each_trial_has_a_diagnosis(smoke_run):
    study_dir, proc = smoke_run
    assert f"report: {study_dir / 'report.html'}" in proc.stdout
    html = (study_dir / "report.html").read_text()
    assert "Content-Security-Policy" in html and '"study": "smoke"' in html
    for t in sorted(study_dir.glob("trial-*")):
        metrics = json.loads((t / "metrics.json").read_text())
        assert metrics["diagnosis"] in ("healthy", "underfitting", "overfitting", "oscillating", "diverged", "grad_spikes")
        assert metrics["diagnosis_evidence"]
        history = [json.loads(line) for line in (t / "history.jsonl").read_text().splitlines()]
        assert history[0]["step"] == 0 and "eval_loss" in history[0]  # the start the diagnosis compares with
        assert manifest(t)["stop_reason"] == "max_steps"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[trial ")]
    assert all("curves: " in line for line in lines)


def test_each_trial_records_its_suites_the_base_and_forgetting(smoke_run):
    study_dir, proc = smoke_run
    for t in sorted(study_dir.glob("trial-*")):
        metrics = json.loads((t / "metrics.json").read_text())
        assert metrics["stdlib/bits_per_byte"] > 0 and 0 <= metrics["toy_base/acc"] <= 1
        for suite, n_docs in (("stdlib", 8), ("toy_base", 40)):
            lo, hi = metrics[f"forgetting/{suite} 95% CI"]
            assert lo <= metrics[f"forgetting/{suite}"] <= hi
            record = json.loads((t / "eval" / suite / "metrics.json").read_text())
            assert record["base"]["value"] is not None and record["forgetting"]["n_docs"] == n_docs
            assert record["higher_is_better"] is (suite == "toy_base")
            results = [json.loads(line) for line in (t / "eval" / suite / "results.jsonl").read_text().splitlines()]
            samples = [json.loads(line) for line in (t / "eval" / suite / "samples.jsonl").read_text().splitlines()]
            assert len(results) == len(samples) == n_docs and all(isinstance(r["score"], float) for r in results)
            assert all("filtered_resps" in s and s["doc_hash"] for s in samples)  # lm-eval's per-document outputs
        assert "suites" in manifest(t)["timings_s"]
    assert "forgetting/toy_base" in proc.stdout  # a leaderboard column


def test_tensorboard_event_files_hold_the_trial_history(tmp_path):
    from harness.tracking.tensorboard_tracker import read_events, unformat

    proc = sweep(tmp_path, "study.name=tb", "study.n_trials=1", "tracking=tensorboard", "eval.suites=[]")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trial = tmp_path / "tb" / "trial-0"
    m, metrics = manifest(trial), json.loads((trial / "metrics.json").read_text())
    assert m["tracking_run"] == str(trial / "tensorboard") and "tracking_warnings" not in m
    events = read_events(trial / "tensorboard")
    history = [json.loads(line) for line in (trial / "history.jsonl").read_text().splitlines()]
    for key in ("eval_loss", "train_loss", "learning_rate", "grad_norm"):  # per step, as history.jsonl has them
        expected = {r["step"]: r[key] for r in history if key in r}
        assert len(expected) >= 3 and events["scalars"][key] == pytest.approx(expected, rel=1e-6), key
    assert sorted(events["scalars"]["eval_loss"]) == [0, 15, 30]
    assert events["scalars"]["summary/toy/pass@1"] == {30: pytest.approx(metrics["toy/pass@1"], rel=1e-6)}
    assert [unformat(c) for c in events["texts"]["status"][-1][1][0]] == ["complete"]
    assert len(events["texts"]["toy/samples"][-1][1]) == 1 + 12  # column names, then one row per problem
    assert not (tmp_path / "tb" / "wandb").exists()  # no W&B run of any kind, not even the study's


def test_early_stopping_ends_a_trial_complete_and_evaluated(tmp_path):
    # min_delta far above any gain: the first evaluation after the start already stops training
    proc = sweep(tmp_path, "study.name=es", "study.n_trials=1", "tracking=none",
                 "train.early_stopping={patience: 1, min_delta: 10.0}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trial = tmp_path / "es" / "trial-0"
    m, metrics = manifest(trial), json.loads((trial / "metrics.json").read_text())
    assert m["status"] == "complete" and m["stop_reason"] == "early_stopping"
    assert metrics["train_steps"] == 15 and "toy/pass@1" in metrics  # stopped at the first evaluation, then scored
    assert "(early-stopped)" in proc.stdout


def test_rerun_resumes_without_redoing_trials(smoke_run):
    study_dir, _ = smoke_run
    before = {t.name: manifest(t)["end"] for t in study_dir.glob("trial-*")}
    proc = sweep(study_dir.parent, "tracking=wandb")
    assert proc.returncode == 0, proc.stderr
    assert "already has 2 complete trials" in proc.stdout
    assert {t.name: manifest(t)["end"] for t in study_dir.glob("trial-*")} == before


def test_sigint_mid_trial_is_recorded_and_rerun_completes(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-m", "harness.sweep", *SMOKE, f"runs_dir={tmp_path}", "tracking=none", "train.max_steps=300"]
    # A runner that started us in the background (bash `cmd &`) leaves SIGINT ignored, and children inherit
    # that; the sweep must see Ctrl-C as a terminal user's process would.
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    history = tmp_path / "smoke" / "trial-0" / "history.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (history.exists() and history.read_text().strip()):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "rerun the same command to resume" in err
    first = manifest(tmp_path / "smoke" / "trial-0")
    assert first["status"] == "failed" and "interrupted" in first["reason"]

    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "re-running 1 interrupted trial configuration" in done.stdout
    statuses = {t.name: manifest(t)["status"] for t in (tmp_path / "smoke").glob("trial-*")}
    assert statuses.pop("trial-0") == "failed"
    assert sorted(statuses.values()) == ["complete", "complete"]
    retried = [manifest(t) for t in (tmp_path / "smoke").glob("trial-*") if t.name != "trial-0"]
    assert first["params"] in [m["params"] for m in retried]


def test_a_trial_that_raises_is_recorded_and_the_study_goes_on(tmp_path, compose, monkeypatch, capsys):
    import harness.train
    from harness.sweep import run_sweep

    real_train = harness.train.train
    calls = {"n": 0}

    def flaky_train(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom: injected failure")
        return real_train(**kwargs)

    monkeypatch.setattr(harness.train, "train", flaky_train)
    overrides = [*SMOKE, f"runs_dir={tmp_path}", "tracking=none"]
    assert run_sweep(compose(overrides), overrides) == 0
    out = capsys.readouterr().out
    study = tmp_path / "smoke"
    failed = manifest(study / "trial-0")
    assert failed["status"] == "failed" and failed["reason"] == "RuntimeError: boom: injected failure"
    assert "boom" in (study / "trial-0" / "error.txt").read_text()
    assert "[trial 0] FAILED    RuntimeError: boom: injected failure" in out
    assert sorted(manifest(t)["status"] for t in study.glob("trial-*")) == ["complete", "complete", "failed"]
    rows = list(csv.DictReader((study / "leaderboard.csv").open()))
    assert rows[-1]["status"] == "failed" and "boom" in rows[-1]["reason"]


def test_two_local_workers_share_a_journal_study(tmp_path):
    proc = sweep(tmp_path, "tracking=none", "launcher.n_workers=2", "storage=journal")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "started 2 local workers" in proc.stdout
    assert (tmp_path / "smoke" / "optuna.journal").exists()
    statuses = [manifest(t)["status"] for t in (tmp_path / "smoke").glob("trial-*")]
    assert statuses.count("complete") >= 2 and "failed" not in statuses


def test_sqlite_is_refused_for_several_workers(tmp_path):
    proc = sweep(tmp_path, "launcher.n_workers=2", timeout=60)
    assert proc.returncode == 2
    assert "SQLite is not safe for launcher.n_workers=2" in proc.stderr


def test_a_study_can_prune_keep_and_select_on_the_probe(tmp_path):
    """prune_on=probe, keep=best_probe, objective_split=validation: Optuna is told the probe's
    final score, the test split is scored for the record, the kept step is recorded."""
    import optuna

    proc = sweep(tmp_path, "tracking=none", "study.prune_on=probe", "train.keep=best_probe", "study.objective_split=validation")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study_dir = tmp_path / "smoke"
    info = json.loads((study_dir / "study.json").read_text())
    assert info["objectives"][0]["metric"] == "probe/pass@1" and info["configured_objectives"][0]["metric"] == "toy/pass@1"
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{study_dir / 'optuna.db'}")
    for t in study.get_trials(states=[optuna.trial.TrialState.COMPLETE]):
        metrics = json.loads((study_dir / f"trial-{t.number}" / "metrics.json").read_text())
        assert t.value == pytest.approx(metrics["probe/pass@1"]) and "toy/pass@1" in metrics
        assert sorted(t.intermediate_values) == [15, 30]  # the probe's pass@1 (not eval loss: every 15 steps too here)
        assert manifest(study_dir / f"trial-{t.number}")["kept_step"] in (15, 30)
        assert "train.keep=best_probe" in metrics["keep_reason"]
