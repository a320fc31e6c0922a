"""Synthetic study records in the trial-record layout (DESIGN.md), for report tests and the
report benchmark (perf/bench_report.py). No training: every number is drawn from a seeded RNG."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

__all__ = ["HOSTILE", "write_study", "write_trial"]

# Model output that would run script, load a remote image or break out of the data element
# if it were ever put into the page as HTML.
HOSTILE = '</script><script>document.title="pwned"</script><img src="http://example.invalid/x.png" onerror="alert(1)">\u2028'

PARAMS = {
    "method.r": {"type": "categorical", "choices": [4, 8, 16, 32, 64], "low": None, "high": None, "log": False},
    "train.learning_rate": {"type": "float", "choices": None, "low": 2e-4, "high": 5e-3, "log": True},
    "method.target_modules": {"type": "categorical", "choices": ["qv", "qkvo", "all-linear"], "low": None, "high": None, "log": False},
}


def _dump(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def _lines(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_trial(study_dir: Path, number: int, *, status: str, rng: random.Random, problems: int = 40,
                n_samples: int = 5, reason: str | None = None, hostile: bool = False, steps: int = 150) -> dict[str, Any]:
    d = study_dir / f"trial-{number}"
    params = {"method.r": rng.choice(PARAMS["method.r"]["choices"]),
              "train.learning_rate": math.exp(rng.uniform(math.log(2e-4), math.log(5e-3))),
              "method.target_modules": rng.choice(PARAMS["method.target_modules"]["choices"])}
    skill = 0.2 + 0.5 * rng.random()
    manifest = {"study": study_dir.name, "trial": number, "seed": number, "status": status, "reason": reason,
                "params": params, "method": "lora", "model": "tiny", "model_hash": "abc123", "data_hash": "d0d0",
                "template": "none", "git": {"sha": "0123abcd", "dirty": False},
                "versions": {"torch": "2.13.0", "transformers": "5.0.0", "peft": "0.17.0"},
                "hardware": {"machine": "x86_64", "cpus": 2, "python": "3.11.2"}, "device": "cpu",
                "sandbox": {"backend": "docker", "image": "evaluators-sandbox:abc", "isolation": "docker: network none"},
                "timings_s": {"train": round(10 + 20 * rng.random(), 2), "total": 40.0}}
    _dump(d / "manifest.json", manifest)
    # curves: a falling loss (the last trials of a study overfit a little)
    rows: list[dict[str, Any]] = [{"step": 0, "eval_loss": 2.0}]
    for step in range(5, steps + 1, 5):
        rows.append({"step": step, "train_loss": 0.5 + 1.5 * math.exp(-step / 40) + rng.uniform(-0.05, 0.05),
                     "grad_norm": 1.0 + rng.random(), "learning_rate": 1e-3 * (1 - step / steps)})
        if step % 10 == 0:
            rows.append({"step": step, "eval_loss": 0.7 + 1.3 * math.exp(-step / 40) + 0.004 * step * (number % 3 == 2)})
    if status == "running":
        rows = rows[: len(rows) // 2]
    _lines(d / "history.jsonl", rows)
    if status in ("running", "failed") and reason and "before" in reason:
        return manifest
    metrics: dict[str, Any] = {"method": "lora", "status": status, "eval_loss": rows[-1].get("eval_loss", 1.0),
                               "trainable_params": params["method.r"] * 4096, "peak_memory_mb": 600 + 10 * params["method.r"],
                               "wall_time_s": 40.0}
    if status == "complete":
        per_task, results = {}, []
        for p in range(problems):
            task = f"toy/add/{p}"
            c = sum(rng.random() < skill * (0.5 + (p % 5) / 5) for _ in range(n_samples))
            per_task[task] = {"n": n_samples, "c": c}
            for s in range(n_samples):
                completion = HOSTILE if hostile and p == 0 and s == 0 else f"    return x + {p}  # sample {s}\n"
                results.append({"task_id": task, "sample": s, "completion": completion, "passed": s < c,
                                "status": "passed" if s < c else "failed", "detail": "" if s < c else "AssertionError"})
        pass1 = sum(v["c"] / v["n"] for v in per_task.values()) / problems
        metrics.update({"toy/pass@1": pass1, "toy/pass@5": sum(v["c"] > 0 for v in per_task.values()) / problems})
        _dump(d / "eval" / "toy" / "metrics.json", {"pass@1": pass1, "per_task": per_task, "higher_is_better": True})
        _lines(d / "eval" / "toy" / "results.jsonl", results)
        _lines(d / "eval" / "toy" / "prompts.jsonl",
               [{"task_id": f"toy/add/{p}", "prompt": f"def add_{p}(x: int) -> int:\n    \"\"\"{HOSTILE if hostile else 'add'}\"\"\"\n"}
                for p in range(problems)])
    _dump(d / "metrics.json", metrics)
    return manifest


def write_study(study_dir: Path, *, n_trials: int, seed: int = 0, problems: int = 40, hostile: bool = True,
                faults: bool = True) -> Path:
    """A study folder: mostly complete trials; with ``faults``, also a pruned one, a failed one, one lost
    while running (status still 'running'), one with a malformed manifest and a complete one whose
    metrics.json is torn."""
    rng = random.Random(seed)
    study_dir.mkdir(parents=True, exist_ok=True)
    _dump(study_dir / "study.json", {"name": study_dir.name, "objectives": [{"metric": "toy/pass@1", "direction": "maximize"}],
                                     "search_space": list(PARAMS), "search_space_spec": PARAMS})
    for n in range(n_trials):
        write_trial(study_dir, n, status="complete", rng=rng, problems=problems, hostile=hostile)
    if faults:
        k = n_trials
        write_trial(study_dir, k, status="pruned", rng=rng, reason="pruned at step 100 (eval_loss 1.2)")
        write_trial(study_dir, k + 1, status="failed", rng=rng, reason=f"loss is nan at step 40 {HOSTILE}")
        write_trial(study_dir, k + 2, status="running", rng=rng, reason="lost before it finished")
        (study_dir / f"trial-{k + 3}").mkdir()
        (study_dir / f"trial-{k + 3}" / "manifest.json").write_text('{"study": "x", "trial": ')
        write_trial(study_dir, k + 4, status="complete", rng=rng, problems=problems)
        (study_dir / f"trial-{k + 4}" / "metrics.json").write_text('{"toy/pass@1": 0.')
    return study_dir
