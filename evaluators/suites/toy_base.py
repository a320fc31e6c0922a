"""The ``toy_base`` suite's items: what the tiny base model knew before fine-tuning.

Multiple choice by log-likelihood: the context is a toy prompt (signature and docstring) of
a family the base was pre-trained on (``toy.PRETRAIN_FAMILIES``), the choices are four
function bodies: the right one, the same operation with another constant, and two other
operations of the same argument type with this constant. Items come from the validation and
test instances only, so neither the base's pre-training nor the default fine-tuning data
(the train split) contains them: a fine-tune that lowers this accuracy has made the model
forget, not failed to memorise.

    python -m evaluators.suites.toy_base   # rewrites tasks/toy_base.jsonl (vendored; a test checks it is current)
"""

from __future__ import annotations

import json
from pathlib import Path

from evaluators.benchmarks import toy

__all__ = ["DATA", "items"]

DATA = Path(__file__).resolve().parent / "tasks" / "toy_base.jsonl"


def _body(family: toy.Family, k: object) -> str:
    return f"    return {family.body.format(k=k)}\n"


def items() -> list[dict]:
    families = {f.key: f for f in toy.FAMILIES}
    out: list[dict] = []
    for inst in toy.instances(None, toy.PRETRAIN_FAMILIES):
        if inst.split == "train":
            continue
        fam = families[inst.family]
        arg = fam.signature.split(":", 1)[0]
        ks = list(fam.ks)
        other_k = ks[(ks.index(inst.k) + 1) % len(ks)]
        same_type = [f for f in toy.FAMILIES if f.key != fam.key and f.signature.split(":", 1)[0] == arg]
        start = toy.FAMILIES.index(fam)
        same_type.sort(key=lambda f: (toy.FAMILIES.index(f) - start) % len(toy.FAMILIES))  # the next ones, cyclically
        choices = [_body(fam, inst.k), _body(fam, other_k)]
        for f in same_type:
            body = _body(f, inst.k)
            if body not in choices:
                choices.append(body)
            if len(choices) == 4:
                break
        # the right answer's position rotates with the item, so no position is favoured
        shift = len(out) % 4
        choices = choices[-shift:] + choices[:-shift] if shift else choices
        out.append({"doc_id": inst.task_id, "family": inst.family, "split": inst.split, "context": inst.prompt,
                    "choices": choices, "gold": choices.index(_body(fam, inst.k))})
    return out


if __name__ == "__main__":
    rows = items()
    DATA.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} items to {DATA}")
