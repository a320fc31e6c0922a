"""A study's identity: its name plus a fingerprint of what defines it.

The definition is the fully resolved root config (model, method, data, train, eval, seed,
sampler, pruner, objectives, search space) minus the runtime knobs below: how many workers
run it, where it is stored, how long a run may go on, where records and caches land. Those
may change between runs of one study; anything else changes what a trial means, so a study
name reused with a different definition is refused (``study.allow_changed=true`` continues
anyway and records the change in the study).

The definition is kept, flattened to dotted keys, in the Optuna study's own user attributes
(the database outlives ``runs/``). A key that a later version of the harness adds is ignored
when it sits at its default value, so upgrading does not orphan a study.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["RUNTIME_KEYS", "DEFINITION_ATTR", "StudyMismatch", "definition", "fingerprint", "differences", "adopt_definition"]

# Dotted prefixes that are not part of a study's definition (documented in docs/cluster.md).
RUNTIME_KEYS = (
    "launcher",
    "storage",
    "tracking",
    "study.name",
    "study.n_trials",
    "study.max_trials",
    "study.max_failures",
    "study.max_retries",
    "study.heartbeat_s",
    "study.grace_s",
    "study.allow_changed",
    "eval.workers",
    "eval.sandbox",
    "train.num_threads",
    # How a trial computes, not what: the same losses within float tolerance (tests/harness/test_train_knobs.py),
    # different memory and speed, so a study may move to a machine that wants the other setting.
    "train.gradient_checkpointing",
    "model.attn_implementation",
    "runs_dir",
    "cache_dir",
    "hydra",
    "evaluate",
)

DEFINITION_ATTR = "harness:definition"
FINGERPRINT_ATTR = "harness:fingerprint"
CHANGES_ATTR = "harness:definition_changes"


class StudyMismatch(Exception):
    """The study name exists with another definition."""

    def __init__(self, name: str, keys: list[str], stored: dict[str, Any], current: dict[str, Any]):
        self.keys = keys
        # group choices first (model.name: tiny -> qwen...), then changed values, then keys one side lacks
        keys = sorted(keys, key=lambda k: (not k.endswith(".name"), k not in stored or k not in current, k))
        shown = []
        for k in keys[:8]:
            old = stored.get(k, "<absent>")
            new = current.get(k, "<absent>")
            shown.append(f"  {k}: {_short(old)} -> {_short(new)}")
        more = f"\n  ... and {len(keys) - 8} more" if len(keys) > 8 else ""
        super().__init__(
            f"study {name!r} exists with a different definition ({len(keys)} key(s) differ):\n"
            + "\n".join(shown) + more
            + "\nto start a new study, pass study.name=<new name>; to continue this one with the new "
            "definition anyway (recorded in the study), pass study.allow_changed=true"
        )


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_runtime(key: str) -> bool:
    return any(key == p or key.startswith(p + ".") for p in RUNTIME_KEYS)


def definition(raw: dict[str, Any]) -> dict[str, Any]:
    """The study's definition: dotted key -> JSON value, runtime knobs left out.

    Mappings are flattened; lists are kept whole (their order matters, e.g. objectives).
    """
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif not _is_runtime(prefix):
            flat[prefix] = json.loads(json.dumps(node, default=str))

    walk("", raw)
    return dict(sorted(flat.items()))


def fingerprint(defn: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(defn, sort_keys=True).encode()).hexdigest()[:16]


def differences(stored: dict[str, Any], current: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """Keys whose values differ. A key the stored definition lacks counts only when its current
    value is not its default (a key added by a later version, left alone, changes nothing)."""
    keys = []
    for k in sorted(set(stored) | set(current)):
        if k not in stored:
            if k in defaults and current[k] == defaults[k]:
                continue
            keys.append(k)
        elif stored.get(k, object()) != current.get(k, object()):
            keys.append(k)
    return keys


@dataclass(frozen=True)
class Identity:
    fingerprint: str
    created: bool  # this run created the study
    changed: list[str]  # keys accepted as changed (study.allow_changed)


def adopt_definition(study, *, name: str, current: dict[str, Any], defaults: dict[str, Any], allow_changed: bool) -> Identity:
    """Check ``current`` against the definition stored in the Optuna study; store it when new.

    Raises :class:`StudyMismatch` when they differ and ``allow_changed`` is false.
    """
    attrs = study.user_attrs
    stored = attrs.get(DEFINITION_ATTR)
    if stored is None:  # a new study (or one from before fingerprints): this definition is its own
        study.set_user_attr(DEFINITION_ATTR, current)
        study.set_user_attr(FINGERPRINT_ATTR, fingerprint(current))
        return Identity(fingerprint(current), created=True, changed=[])
    keys = differences(stored, current, defaults)
    if not keys:
        return Identity(attrs.get(FINGERPRINT_ATTR) or fingerprint(stored), created=False, changed=[])
    if not allow_changed:
        raise StudyMismatch(name, keys, stored, current)
    changes = list(attrs.get(CHANGES_ATTR) or [])
    changes.append({"time": time.time(), "keys": {k: [stored.get(k), current.get(k)] for k in keys}})
    study.set_user_attr(CHANGES_ATTR, changes)
    study.set_user_attr(DEFINITION_ATTR, current)
    study.set_user_attr(FINGERPRINT_ATTR, fingerprint(current))
    return Identity(fingerprint(current), created=False, changed=keys)
