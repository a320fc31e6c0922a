"""``mbpp``: Mostly Basic Python Problems, vendored in evaluators/data (CC BY 4.0, see SOURCE.md).

Splits by task id (the paper's): prompt 1-10, test 11-510, validation 511-600, train 601-974.

Prompt formats (recorded in ``Benchmark.meta``):

- ``3shot`` (default; the MBPP paper's, as in lm-evaluation-harness ``mbpp``): tasks 2, 3, 4 as
  examples, each ``You are an expert Python programmer, and here is your task: {text} Your code
  should pass these tests:\\n\\n{3 asserts}\\n[BEGIN]\\n{code}\\n[DONE]``, joined by blank lines, then
  the task itself ending in ``[BEGIN]\\n``. Stop: ``[DONE]``.
- ``docstring`` (zero-shot, as in bigcode-evaluation-harness ``mbpp``): ``\"\"\"\\n{text}\\n{first
  assert}\\n\"\"\"\\n``. Stop: ``\\nclass``, ``\\nassert``, ``\\n\"\"\"``, ``\\nprint``, ``\\nif``, ``\\n<|/`` and a code fence.

Program (both formats): completion + test setup code + the three asserts. The completion is the
whole solution (``program_style="standalone"``); the canonical solution is the reference ``code``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from evaluators.benchmarks._base import Benchmark, Task

__all__ = ["DATA", "FEWSHOT_IDS", "PROMPT_FORMATS", "SPLITS", "load", "records", "statement"]

DATA = Path(__file__).resolve().parent.parent / "data" / "mbpp.jsonl"
SHA256 = "ccf64ceae9c5403bf50a044cb6d505bfd2a2963ee58338ba268fd65beab92a9f"
SPLITS: dict[str, range] = {
    "prompt": range(1, 11),
    "test": range(11, 511),
    "validation": range(511, 601),
    "train": range(601, 975),
}
FEWSHOT_IDS = (2, 3, 4)
PROMPT_FORMATS: dict[str, tuple[str, ...]] = {
    "3shot": ("[DONE]",),
    "docstring": ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```"),
}


def records() -> dict[int, dict]:
    """All 974 raw MBPP records by task id (checks the vendored file's hash)."""
    raw = DATA.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256:
        raise ValueError(f"{DATA} has sha256 {digest}, expected {SHA256} (see evaluators/data/SOURCE.md)")
    rows = (json.loads(line) for line in raw.decode().splitlines() if line.strip())
    return {r["task_id"]: r for r in rows}


def _instruction(r: dict) -> str:
    tests = "\n".join(r["test_list"][:3])
    return (f"You are an expert Python programmer, and here is your task: {r['text']} "
            f"Your code should pass these tests:\n\n{tests}\n[BEGIN]\n")


def _prompt(r: dict, prompt_format: str, shots: Sequence[dict]) -> str:
    if prompt_format == "3shot":
        examples = [f"{_instruction(s)}{s['code']}\n[DONE]" for s in shots]
        return "\n\n".join([*examples, _instruction(r)])
    return f'"""\n{r["text"]}\n{r["test_list"][0]}\n"""\n'


def _test(r: dict) -> str:
    setup = r["test_setup_code"].strip()
    return "\n".join(([setup] if setup else []) + list(r["test_list"])) + "\n"


def _entry_point(r: dict) -> str:
    # the function the asserts call: "assert name(" ...
    first = r["test_list"][0].split("assert", 1)[-1].strip()
    return first.split("(", 1)[0].strip()


def statement(task: Task) -> str:
    """The problem as stated: MBPP's prose ``text`` (the prompt wraps it in few-shot examples or a docstring)."""
    return task.meta["text"]


def load(
    *,
    split: str = "test",
    prompt_format: str = "3shot",
    limit: int | None = None,
    task_ids: Sequence[int | str] | None = None,
    **_: object,
) -> Benchmark:
    """The ``split`` tasks (default: the 500 test tasks 11-510), optionally the first ``limit`` or ``task_ids``."""
    if split not in SPLITS:
        raise ValueError(f"unknown mbpp split {split!r}; choose one of {sorted(SPLITS)}")
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"unknown mbpp prompt_format {prompt_format!r}; choose one of {sorted(PROMPT_FORMATS)}")
    rows = records()
    shots = [rows[i] for i in FEWSHOT_IDS]
    chosen = [rows[i] for i in SPLITS[split]]
    if task_ids is not None:
        wanted = {int(str(t).rsplit("/", 1)[-1]) for t in task_ids}
        chosen = [r for r in chosen if r["task_id"] in wanted]
    if limit is not None:
        chosen = chosen[:limit]
    tasks = tuple(
        Task(task_id=f"mbpp/{r['task_id']}", prompt=_prompt(r, prompt_format, shots), entry_point=_entry_point(r),
             test=_test(r), canonical_solution=r["code"], meta={"text": r["text"]})
        for r in chosen
    )
    return Benchmark(
        name="mbpp",
        tasks=tasks,
        stop=PROMPT_FORMATS[prompt_format],
        program_style="standalone",
        meta={"source": "evaluators/data/mbpp.jsonl (CC BY 4.0)", "split": split, "prompt_format": prompt_format,
              "fewshot_ids": list(FEWSHOT_IDS) if prompt_format == "3shot" else [], "limit": limit,
              "task_ids": [str(t) for t in task_ids] if task_ids is not None else None,
              "total_in_split": len(SPLITS[split]), "selected": len(tasks)},
    )
