"""A mixed HumanEval corpus for parity tests and benchmarks: canonical, wrong, raising,
syntax errors, infinite loops, printing. Deterministic."""

from __future__ import annotations

KINDS = ("canonical", "wrong", "raising", "syntax_error", "infinite_loop", "printing")


def completion(kind: str, canonical: str) -> str:
    if kind == "canonical":
        return canonical
    if kind == "wrong":
        return "    return None\n"
    if kind == "raising":
        return "    raise ValueError('generated code gave up')\n"
    if kind == "syntax_error":
        return "    return (1 +\n"
    if kind == "infinite_loop":
        return "    while True:\n        pass\n"
    if kind == "printing":
        return "    print('passed', 'looks done')\n" + canonical
    raise ValueError(kind)


def mixed_samples(problems: dict, per_kind: int, kinds=KINDS) -> list[dict]:
    """``per_kind`` tasks per kind, cycling through the problems in order."""
    ids = list(problems)
    out = []
    for j, kind in enumerate(kinds):
        for i in range(per_kind):
            p = problems[ids[(j * per_kind + i) % len(ids)]]
            out.append({"task_id": p["task_id"], "completion": completion(kind, p["canonical_solution"]), "kind": kind})
    return out
