"""humaneval and mbpp: what they load, their prompt formats and stop sequences, and that their
reference solutions pass in the sandbox (164/164 and >= 499/500)."""

import pytest

from evaluators.benchmarks import HUMANEVAL_STOP, load_benchmark
from evaluators.benchmarks.mbpp import PROMPT_FORMATS
from evaluators.sandbox import open_sandbox
from evaluators.scoring import score
from tests.evaluators.test_sandbox_contract import docker_ready

# mbpp/123 (amicable_numbers_sum(9999)) is an O(n^2) reference that needs 2-4 s of CPU on a
# 2-core box: it can exceed the standard 3 s limit. It is the only reference allowed to fail.
MBPP_SLOW = {"mbpp/123"}


def test_humaneval_is_the_164_released_problems():
    b = load_benchmark("humaneval")
    assert len(b.tasks) == 164 and b.tasks[0].task_id == "HumanEval/0" and b.stop == HUMANEVAL_STOP
    assert b.program_style == "humaneval" and b.meta["selected"] == 164
    sub = load_benchmark("humaneval", limit=5)
    assert len(sub.tasks) == 5 and sub.meta["limit"] == 5


def test_mbpp_test_split_is_task_ids_11_to_510():
    b = load_benchmark("mbpp")
    ids = [int(t.task_id.split("/")[1]) for t in b.tasks]
    assert ids == list(range(11, 511))
    assert b.meta["split"] == "test" and b.meta["prompt_format"] == "3shot" and b.meta["fewshot_ids"] == [2, 3, 4]
    assert b.program_style == "standalone"


def test_mbpp_3shot_prompt_format():
    b = load_benchmark("mbpp", limit=1)
    prompt = b.tasks[0].prompt
    assert prompt.count("[BEGIN]") == 4 and prompt.count("[DONE]") == 3 and prompt.endswith("[BEGIN]\n")
    assert prompt.startswith("You are an expert Python programmer, and here is your task: Write a function to find "
                             "the similar elements from the given two tuple lists.")
    assert b.stop == ("[DONE]",)


def test_mbpp_docstring_prompt_format():
    b = load_benchmark("mbpp", prompt_format="docstring", limit=1)
    t = b.tasks[0]
    assert t.prompt.startswith('"""\n') and t.prompt.endswith('"""\n') and "assert" in t.prompt
    assert b.stop == PROMPT_FORMATS["docstring"] and "\nassert" in b.stop


def test_mbpp_rejects_unknown_options():
    with pytest.raises(ValueError, match="prompt_format"):
        load_benchmark("mbpp", prompt_format="5shot")
    with pytest.raises(ValueError, match="split"):
        load_benchmark("mbpp", split="dev")


@pytest.fixture(scope="module", params=["process", pytest.param("docker", marks=pytest.mark.docker)])
def sandbox(request):
    if request.param == "docker" and (reason := docker_ready()):
        pytest.skip(reason)
    with open_sandbox(request.param, workers=2) as sb:
        yield sb


def test_humaneval_canonical_solutions_pass(sandbox):
    b = load_benchmark("humaneval")
    out = score(b, [{"task_id": t.task_id, "completion": t.canonical_solution} for t in b.tasks], sandbox=sandbox, ks=(1,))
    assert out.metrics["statuses"]["passed"] == 164, [r for r in out.results if not r["passed"]]


def test_mbpp_reference_code_passes(sandbox):
    b = load_benchmark("mbpp")
    out = score(b, [{"task_id": t.task_id, "completion": t.canonical_solution} for t in b.tasks], sandbox=sandbox, ks=(1,))
    failures = {r["task_id"]: r["detail"] for r in out.results if not r["passed"]}
    assert set(failures) <= MBPP_SLOW, failures
    assert out.metrics["statuses"]["passed"] >= 499
