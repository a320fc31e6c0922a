"""``toy``: synthetic HumanEval-format tasks a tiny model can learn on a CPU.

Each task is one instance of a *family* (add k, take the first k items, ...) with a
constant ``k``. The prompt is a signature and a one-line docstring; the reference
completion is a one-line body; the test is a ``check(candidate)`` function with four
assertions, exactly like HumanEval.

Instances are split by a stable hash of (family, k) into disjoint train / validation /
test sets, so a model scored on ``test`` has never seen those exact functions.
Everything is deterministic: no randomness, no files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from evaluators.benchmarks._base import HUMANEVAL_STOP, Benchmark, Task

__all__ = ["FAMILIES", "PRETRAIN_FAMILIES", "SPLITS", "ToyInstance", "instances", "load", "records"]

SPLITS: tuple[str, ...] = ("train", "validation", "test")


@dataclass(frozen=True)
class Family:
    key: str
    name: str  # function name template, {k}
    signature: str  # parameters and return annotation
    doc: str  # docstring template, {k}
    body: str  # reference body expression template, {k}
    inputs: tuple  # test inputs (the argument of each assertion)
    ks: Sequence


_INTS = ("0", "3", "17", "42")
_STRS = ("'abcab'", "'hello world'", "'xyz'", "'banana'")
_LISTS = ("[1, 5, 2, 8]", "[10, 0, 3]", "[]", "[7, 7, 1, 9, 4]")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_WORDS = tuple(a + b + c for a in "bdfk" for b in "aeiou" for c in "nrst")  # 80 pronounceable suffixes

FAMILIES: tuple[Family, ...] = (
    Family("add", "add_{k}", "x: int) -> int", "Return x plus {k}.", "x + {k}", _INTS, range(1, 61)),
    Family("sub", "sub_{k}", "x: int) -> int", "Return x minus {k}.", "x - {k}", _INTS, range(1, 61)),
    Family("mul", "times_{k}", "x: int) -> int", "Return x times {k}.", "x * {k}", _INTS, range(2, 61)),
    Family("mod", "mod_{k}", "x: int) -> int", "Return x modulo {k}.", "x % {k}", _INTS, range(2, 61)),
    Family("div", "div_{k}", "x: int) -> int", "Return x divided by {k}, rounded down.", "x // {k}", _INTS, range(2, 61)),
    Family("divisible", "divisible_by_{k}", "x: int) -> bool", "Return True if x is divisible by {k}.", "x % {k} == 0", _INTS, range(2, 61)),
    Family("greater", "greater_than_{k}", "x: int) -> bool", "Return True if x is greater than {k}.", "x > {k}", _INTS, range(1, 61)),
    Family("repeat", "repeat_{k}", "s: str) -> str", "Return s repeated {k} times.", "s * {k}", _STRS, range(2, 31)),
    Family("prefix", "first_{k}_chars", "s: str) -> str", "Return the first {k} characters of s.", "s[:{k}]", _STRS, range(1, 41)),
    Family("suffix", "last_{k}_chars", "s: str) -> str", "Return the last {k} characters of s.", "s[-{k}:]", _STRS, range(1, 41)),
    Family("count", "count_{k}", "s: str) -> int", "Return how many times '{k}' occurs in s.", "s.count('{k}')", _STRS, _LETTERS),
    Family("append", "append_{k}", "s: str) -> str", "Return s followed by '{k}'.", "s + '{k}'", _STRS, _WORDS),
    Family("take", "take_{k}", "xs: list) -> list", "Return the first {k} items of xs.", "xs[:{k}]", _LISTS, range(1, 41)),
    Family("drop", "drop_{k}", "xs: list) -> list", "Return xs without its first {k} items.", "xs[{k}:]", _LISTS, range(1, 41)),
    Family("above", "above_{k}", "xs: list) -> list", "Return the items of xs greater than {k}.", "[v for v in xs if v > {k}]", _LISTS, range(0, 41)),
    Family("scale", "scale_{k}", "xs: list) -> list", "Return every item of xs times {k}.", "[v * {k} for v in xs]", _LISTS, range(2, 41)),
    Family("shift", "shift_{k}", "xs: list) -> list", "Return every item of xs plus {k}.", "[v + {k} for v in xs]", _LISTS, range(1, 41)),
    Family("count_eq", "count_{k}s", "xs: list) -> int", "Return how many items of xs equal {k}.", "xs.count({k})", _LISTS, range(0, 41)),
)

# The tiny base model is pre-trained on these families only (train split), so that it
# knows the format and half of the operations; fine-tuning has the other half to learn.
PRETRAIN_FAMILIES: tuple[str, ...] = tuple(f.key for f in FAMILIES[::2])


@dataclass(frozen=True)
class ToyInstance:
    family: str
    k: object
    task_id: str
    prompt: str
    completion: str
    test: str
    entry_point: str
    split: str


def _split_of(family: str, k: object) -> str:
    bucket = int(hashlib.sha256(f"{family}:{k}".encode()).hexdigest(), 16) % 10
    return "test" if bucket < 2 else "validation" if bucket == 2 else "train"


def _expected(body: str, arg_name: str, arg_src: str) -> object:
    # Reference values come from evaluating our own (trusted, generated-here) reference body.
    return eval(body, {arg_name: eval(arg_src)})  # noqa: S307 - trusted constant expressions only


def _make(family: Family, k: object) -> ToyInstance:
    name = family.name.format(k=k)
    arg_name = family.signature.split(":", 1)[0]
    body = family.body.format(k=k)
    prompt = f'def {name}({family.signature}:\n    """{family.doc.format(k=k)}"""\n'
    asserts = "\n".join(
        f"    assert candidate({src}) == {_expected(body, arg_name, src)!r}" for src in family.inputs
    )
    test = f"def check(candidate):\n{asserts}\n"
    return ToyInstance(
        family=family.key,
        k=k,
        task_id=f"toy/{family.key}/{k}",
        prompt=prompt,
        completion=f"    return {body}\n",
        test=test,
        entry_point=name,
        split=_split_of(family.key, k),
    )


def instances(split: str | None = None, families: Sequence[str] | None = None) -> list[ToyInstance]:
    """All instances of ``split`` (or every split), in a stable order that interleaves families."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown toy split {split!r}; choose one of {SPLITS}")
    per_family = [
        [_make(f, k) for k in f.ks]
        for f in FAMILIES
        if families is None or f.key in families
    ]
    per_family = [[i for i in group if split is None or i.split == split] for group in per_family]
    out: list[ToyInstance] = []
    for row in range(max((len(g) for g in per_family), default=0)):
        out.extend(g[row] for g in per_family if row < len(g))
    return out


def records(split: str | None = "train", families: Sequence[str] | None = None) -> list[dict]:
    """Training records in prompt/completion format (``split=None``: every split)."""
    return [
        {"prompt": i.prompt, "completion": i.completion, "task_id": i.task_id}
        for i in instances(split, families)
    ]


def load(*, split: str = "test", limit: int | None = None, **_: object) -> Benchmark:
    """The toy benchmark; ``limit`` keeps the first N tasks (interleaved, so every family is covered)."""
    chosen = instances(split)
    total = len(chosen)
    if limit is not None:
        chosen = chosen[:limit]
    tasks = tuple(
        Task(
            task_id=i.task_id,
            prompt=i.prompt,
            entry_point=i.entry_point,
            test=i.test,
            canonical_solution=i.completion,
            meta={"family": i.family},
        )
        for i in chosen
    )
    return Benchmark(
        name="toy",
        tasks=tasks,
        stop=HUMANEVAL_STOP,
        program_style="humaneval",
        meta={"split": split, "limit": limit, "total_in_split": total},
    )
