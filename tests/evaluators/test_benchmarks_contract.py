"""The contract every benchmark meets, run against each entry of ``evaluators.benchmarks.BENCHMARKS``:
it loads (a few tasks), its task ids are unique, each task's reference solution passes its own tests in
the sandbox while an empty completion fails them, its stop sequences are strings, every split it
declares loads, and what decontamination reads of it matches what it scores.

A new benchmark is an entry in BENCHMARKS plus a case in CASES below (a test checks both lists agree).
Whole-benchmark checks (164/164 HumanEval references pass, ...) are in the per-benchmark test files.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from evaluators.benchmarks import BENCHMARKS, Benchmark, load_benchmark
from evaluators.sandbox import Program, open_sandbox

LIMIT = 4  # tasks per benchmark run in the sandbox: the contract, not the benchmark, is under test


class Case(NamedTuple):
    tasks: int  # tasks in the scored split (test, or the whole benchmark when it has no splits)
    options: dict[str, Any]  # other options of `load` to run the contract with too (prompt formats, ...)


# benchmark name -> what the contract expects of it
CASES: dict[str, Case] = {
    "toy": Case(tasks=188, options={}),
    "humaneval": Case(tasks=164, options={}),
    "mbpp": Case(tasks=500, options={"prompt_format": "docstring"}),
}


def _loads(name: str) -> list[dict[str, Any]]:
    """Every way the contract loads a benchmark: its defaults, then each extra option of its case."""
    return [{}, *({key: value} for key, value in CASES[name].options.items())]


def test_every_registered_benchmark_has_a_case_here():
    assert set(CASES) == set(BENCHMARKS)
    assert all(entry.name == name and entry.summary for name, entry in BENCHMARKS.items())


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_scored_split_loads_with_unique_task_ids(name):
    bench = load_benchmark(name)
    assert isinstance(bench, Benchmark) and bench.name == name
    ids = [t.task_id for t in bench.tasks]
    assert len(ids) == CASES[name].tasks and len(set(ids)) == len(ids)
    assert [t.task_id for t in load_benchmark(name, limit=LIMIT).tasks] == ids[:LIMIT]


@pytest.mark.parametrize("name", sorted(CASES))
def test_stop_sequences_are_a_tuple_of_strings(name):
    for options in _loads(name):
        stop = load_benchmark(name, limit=1, **options).stop
        assert isinstance(stop, tuple) and stop and all(isinstance(s, str) and s for s in stop), (options, stop)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_declared_split_loads(name):
    entry = BENCHMARKS[name]
    if not entry.splits:  # one fixed set of problems: there is nothing to choose
        return
    assert "test" in entry.splits and len(set(entry.splits)) == len(entry.splits)
    for split in entry.splits:
        bench = load_benchmark(name, split=split, limit=2)
        assert len(bench.tasks) == 2 and bench.meta["split"] == split, split
    with pytest.raises(ValueError, match="split"):
        load_benchmark(name, split="no-such-split")


@pytest.mark.parametrize("name", sorted(CASES))
def test_decontamination_reads_the_scored_problems(name):
    refs = BENCHMARKS[name].references()
    tasks = load_benchmark(name).tasks
    assert [(r.task_id, r.kind) for r in refs] == [(t.task_id, kind) for t in tasks for kind in ("prompt", "solution")]
    assert all(r.text.strip() for r in refs)
    assert [r.text for r in refs if r.kind == "solution"] == [t.canonical_solution for t in tasks]


@pytest.fixture(scope="module")
def sandbox():
    with open_sandbox("process", workers=2) as sb:
        yield sb


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_solutions_pass_and_empty_completions_fail(name, sandbox):
    for options in _loads(name):
        bench = load_benchmark(name, limit=LIMIT, **options)
        programs = []
        for task in bench.tasks:
            reference = bench.program(task, task.canonical_solution)
            compile(reference, task.task_id, "exec")  # a whole program, its tests included
            assert task.test in reference
            programs += [Program(f"reference:{task.task_id}", reference, timeout_s=10.0),
                         Program(f"empty:{task.task_id}", bench.program(task, ""), timeout_s=10.0)]
        verdicts = sandbox.run(programs)
        assert [v.id for v in verdicts] == [p.id for p in programs]
        for v in verdicts:
            assert v.passed == v.id.startswith("reference:"), (options, v)
