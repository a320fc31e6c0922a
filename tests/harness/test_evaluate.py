"""harness.evaluate scores a saved adapter exactly as its trial did, and refuses pickled weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def run(module: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def rows(path):
    return [(r["task_id"], r["sample"], r["completion"], r["passed"]) for r in map(json.loads, path.read_text().splitlines())]


def test_a_trials_adapter_scores_exactly_as_in_its_trial_and_the_gate_reads_both(tmp_path):
    sweep = run("harness.sweep", "+sweep=smoke", "eval.sandbox=process", "tracking=none", f"runs_dir={tmp_path}", "study.n_trials=1")
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    trial = tmp_path / "smoke" / "trial-0"
    out = tmp_path / "ev"
    ev = run("harness.evaluate", f"evaluate.source={trial}", f"evaluate.out={out}", "eval.sandbox=process")
    assert ev.returncode == 0, ev.stdout + ev.stderr
    assert rows(out / "eval" / "toy" / "results.jsonl") == rows(trial / "eval" / "toy" / "results.jsonl")
    assert json.loads((out / "metrics.json").read_text())["toy/pass@1"] == json.loads((trial / "metrics.json").read_text())["toy/pass@1"]
    # the suites too: same scores and forgetting as in the trial, same per-document records (the gate reads them)
    ev_metrics, trial_metrics = (json.loads((d / "metrics.json").read_text()) for d in (out, trial))
    for key in ("stdlib/bits_per_byte", "toy_base/acc", "forgetting/stdlib", "forgetting/toy_base"):
        assert ev_metrics[key] == pytest.approx(trial_metrics[key], abs=1e-4), key
    for suite in ("stdlib", "toy_base"):
        scores = [[r["task_id"], round(r["score"], 4)] for r in map(json.loads, (out / "eval" / suite / "results.jsonl").read_text().splitlines())]
        lines = (trial / "eval" / suite / "results.jsonl").read_text().splitlines()
        assert scores == [[r["task_id"], round(r["score"], 4)] for r in map(json.loads, lines)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "evaluation" and manifest["status"] == "complete" and manifest["adapter"].endswith("adapter")
    gate = run("harness.gate", "--baseline", str(trial), "--candidate", str(out), timeout=60)
    assert gate.returncode in (0, 2), gate.stdout + gate.stderr  # identical outcomes: never a regression, never "not comparable"
    assert "+0.0" in gate.stdout


def test_pickled_weights_are_refused_before_anything_loads(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.bin").write_bytes(b"not really a pickle")
    ev = run("harness.evaluate", f"evaluate.adapter={adapter}", f"evaluate.out={tmp_path / 'ev'}", timeout=60)
    assert ev.returncode == 2
    assert "pickled weights are refused because loading them would run code" in ev.stderr
    assert not (tmp_path / "ev").exists()


def test_group_choices_cannot_rewrite_a_trials_config(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "config.yaml").write_text("model: {}\n")
    ev = run("harness.evaluate", f"evaluate.source={tmp_path / 't'}", "model=qwen2.5-coder-0.5b", timeout=60)
    assert ev.returncode == 2 and "group choices (model=qwen2.5-coder-0.5b)" in ev.stderr
