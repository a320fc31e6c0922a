"""score(): toy benchmark through the process sandbox."""

import pytest

from evaluators.benchmarks import load_benchmark
from evaluators.sandbox import open_sandbox
from evaluators.scoring import ScoringInputError, score


@pytest.fixture(scope="module")
def sandbox():
    with open_sandbox("process", workers=2) as sb:
        yield sb


@pytest.fixture(scope="module")
def toy():
    return load_benchmark("toy", limit=12)


def test_canonical_completions_all_pass(toy, sandbox):
    samples = [{"task_id": t.task_id, "completion": t.canonical_solution, "tag": i} for i, t in enumerate(toy.tasks)]
    out = score(toy, samples, sandbox=sandbox, ks=(1,))
    assert [r["task_id"] for r in out.results] == [t.task_id for t in toy.tasks]
    assert all(r["passed"] and r["result"] == "passed" and r["status"] == "passed" for r in out.results)
    assert [r["tag"] for r in out.results] == list(range(len(toy.tasks)))  # extra fields kept
    assert out.metrics["pass@1"] == 1.0
    assert out.metrics["sandbox"] == "process" and "WEAK" in out.metrics["isolation"]
    assert out.metrics["statuses"]["passed"] == len(toy.tasks)
    assert all(c == {"n": 1, "c": 1} for c in out.per_task.values())


def test_pass_at_k_only_for_k_up_to_min_n(toy, sandbox):
    samples = []
    for t in toy.tasks:
        samples += [{"task_id": t.task_id, "completion": t.canonical_solution},
                    {"task_id": t.task_id, "completion": "    return None\n"}]
    out = score(toy, samples, sandbox=sandbox, ks=(1, 2, 10))
    assert out.metrics["pass@1"] == pytest.approx(0.5)
    assert out.metrics["pass@2"] == pytest.approx(1.0)
    assert "pass@10" not in out.metrics and out.metrics["ks_skipped"] == [10]
    assert all(c == {"n": 2, "c": 1} for c in out.per_task.values())


def test_empty_completion_is_a_failure(toy, sandbox):
    t = toy.tasks[0]
    out = score(toy, [{"task_id": t.task_id, "completion": ""}], sandbox=sandbox, ks=(1,), subset=True)
    assert out.results[0]["passed"] is False and out.metrics["pass@1"] == 0.0
    assert out.metrics["subset"] is True and out.metrics["n_tasks"] == 1


def test_bad_inputs_are_refused_before_running(toy, sandbox):
    t = toy.tasks[0]
    with pytest.raises(ScoringInputError, match="unknown task_id"):
        score(toy, [{"task_id": "nope", "completion": ""}], sandbox=sandbox, subset=True)
    with pytest.raises(ScoringInputError, match="have no samples"):
        score(toy, [{"task_id": t.task_id, "completion": ""}], sandbox=sandbox)
    with pytest.raises(ScoringInputError, match="missing 'completion'"):
        score(toy, [{"task_id": t.task_id}], sandbox=sandbox, subset=True)
