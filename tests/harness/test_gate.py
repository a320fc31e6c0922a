"""The gate CLI on records written the way trials write them: verdicts, exit codes, like-for-like refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.gate import main

GEN = {"n_samples": 20, "temperature": 0.8, "top_p": 0.95, "max_new_tokens": 40, "batch_size": 100, "seed": 0, "decoding": "sampling"}


def record(directory: Path, rates: dict[str, float], *, n: int = 20, bench: str = "toy", **metrics_overrides) -> Path:
    """An evaluation record whose task ``t`` passes round(rate * n) of its n samples."""
    out = directory / "eval" / bench
    out.mkdir(parents=True)
    rows = []
    for task, rate in rates.items():
        k = round(rate * n)
        rows += [{"task_id": task, "sample": s, "completion": "...", "passed": s < k} for s in range(n)]
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = {"benchmark_meta": {"split": "test", "limit": None}, "prompt_template": "none", "timeout_s": 3.0,
               "generation": {**GEN, "n_samples": n}, **metrics_overrides}
    (out / "metrics.json").write_text(json.dumps(metrics))
    return directory


RATES = {f"toy/t/{i}": (0.0 if i % 3 == 0 else 1.0 if i % 3 == 1 else 0.5) for i in range(120)}


def test_the_same_quality_passes(tmp_path, capsys):
    b = record(tmp_path / "b", RATES)
    c = record(tmp_path / "c", RATES, generation={**GEN, "seed": 7, "batch_size": 8})  # seed and batch size do not matter
    assert main(["--baseline", str(b), "--candidate", str(c)]) == 0
    assert "# Gate: **pass**" in capsys.readouterr().out


def test_a_clear_drop_is_a_regression_with_its_flipped_problems(tmp_path):
    worse = {t: (0.0 if i < 20 and r == 1.0 else r) for i, (t, r) in enumerate(RATES.items())}
    b, c = record(tmp_path / "b", RATES), record(tmp_path / "c", worse)
    assert main(["--baseline", str(b), "--candidate", str(c), "--out", str(tmp_path / "report")]) == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "regression"
    toy = report["benchmarks"]["toy"]
    assert toy["drop"] == pytest.approx(7 / 120) and toy["lower"] > 0 and len(toy["worse"]) == 7
    assert "worse on:" in (tmp_path / "report.md").read_text()


def test_too_few_problems_is_inconclusive(tmp_path, capsys):
    few = dict(list(RATES.items())[:12])
    b, c = record(tmp_path / "b", few, n=1, generation={**GEN, "n_samples": 1}), record(tmp_path / "c", few, n=1, generation={**GEN, "n_samples": 1})
    assert main(["--baseline", str(b), "--candidate", str(c)]) == 2
    assert "cannot be excluded" in capsys.readouterr().out


@pytest.mark.parametrize("change, named", [
    ({"prompt_template": "alpaca"}, "prompt_template: 'none' vs 'alpaca'"),
    ({"generation": {**GEN, "temperature": 0.2}}, "generation.temperature: 0.8 vs 0.2"),
    ({"timeout_s": 10.0}, "timeout_s: 3.0 vs 10.0"),
    ({"benchmark_meta": {"split": "validation", "limit": None}}, "benchmark_meta"),
])
def test_records_that_are_not_like_for_like_are_refused(tmp_path, capsys, change, named):
    b, c = record(tmp_path / "b", RATES), record(tmp_path / "c", RATES, **change)
    assert main(["--baseline", str(b), "--candidate", str(c)]) == 3
    assert named in capsys.readouterr().err


def test_different_task_sets_and_bad_input_exit_3(tmp_path, capsys):
    b = record(tmp_path / "b", RATES)
    c = record(tmp_path / "c", dict(list(RATES.items())[:-1]))
    assert main(["--baseline", str(b), "--candidate", str(c)]) == 3
    assert "task sets differ (1 only in the baseline, 0 only in the candidate)" in capsys.readouterr().err
    bad = record(tmp_path / "bad", RATES)
    with open(bad / "eval" / "toy" / "results.jsonl", "a") as f:
        f.write('{"task_id": "toy/t/0", "sample": 99}\n')
    assert main(["--baseline", str(b), "--candidate", str(bad)]) == 3
    assert "results.jsonl:2401: malformed result row" in capsys.readouterr().err
    assert main(["--baseline", str(b), "--candidate", str(tmp_path / "missing")]) == 3
    assert main(["--baseline", str(b)]) == 3  # usage error


def test_different_rendered_prompts_are_refused(tmp_path, capsys):
    b = record(tmp_path / "b", RATES, prompts_sha256="a" * 64)
    c = record(tmp_path / "c", RATES, prompts_sha256="b" * 64)
    assert main(["--baseline", str(b), "--candidate", str(c)]) == 3
    assert "rendered prompts differ (prompts_sha256 aaaaaaaaaaaa vs bbbbbbbbbbbb)" in capsys.readouterr().err
