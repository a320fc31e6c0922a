"""The trial record: the contract between stages (see DESIGN.md, "The trial record").

    runs/<study>/trial-<number>/
        config.yaml  manifest.json  history.jsonl  adapter/  eval/<benchmark>/...  metrics.json

Every file is written atomically (``common.files``: temp file + rename), so a reader never
sees half a record, and a killed trial leaves the last complete version of each file. A failed or
pruned trial still writes its manifest with status and reason.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common.files import read_json, write_json_atomic, write_text_atomic

__all__ = ["TrialRecord", "mark_record", "read_json", "environment_facts"]


def _git_state() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = bool(
            subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True,
                           timeout=5).stdout.strip()
        )
        return {"sha": sha or None, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None}


def environment_facts() -> dict[str, Any]:
    """Versions and hardware, computed once per process."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for pkg in ("torch", "transformers", "peft", "accelerate", "optuna", "hydra-core", "wandb", "datasets", "bitsandbytes", "lm-eval"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    hardware: dict[str, Any] = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        import torch

        if torch.cuda.is_available():
            hardware["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return {"git": _git_state(), "versions": versions, "hardware": hardware}


_ENV: dict[str, Any] | None = None


class TrialRecord:
    """Writes one trial's folder. Phases are timed with :meth:`phase` for the manifest's breakdown."""

    def __init__(self, directory: Path, *, study: str, number: int, seed: int):
        global _ENV
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        if _ENV is None:
            _ENV = environment_facts()
        self.started = time.time()
        self.timings: dict[str, float] = {}
        self.manifest: dict[str, Any] = {
            "study": study,
            "trial": number,
            "seed": seed,
            **_ENV,
            "start": self.started,
            "end": None,
            "status": "running",
            "reason": None,
            "timings_s": self.timings,
        }
        (self.dir / "history.jsonl").unlink(missing_ok=True)  # a retried trial number starts clean
        self.flush()

    @contextmanager
    def phase(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t0, 4)

    def update(self, **facts: Any) -> None:
        self.manifest.update(facts)
        self.flush()

    def flush(self) -> None:
        write_json_atomic(self.dir / "manifest.json", self.manifest)

    def write_config(self, resolved: dict[str, Any]) -> None:
        import yaml

        write_text_atomic(self.dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))

    def append_history(self, row: dict[str, Any]) -> None:
        # Appending one line is atomic enough for a log: a torn last line is skipped by readers.
        with open(self.dir / "history.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json_atomic(self.dir / "metrics.json", metrics)

    def finish(self, status: str, reason: str | None = None) -> None:
        end = time.time()
        self.timings["total"] = round(end - self.started, 4)
        self.update(status=status, reason=reason, end=end)


def mark_record(trial_dir: Path, *, study: str, number: int, status: str, reason: str | None, **facts: Any) -> None:
    """Set a trial's recorded status from outside its worker (a lost worker's trial, a result
    Optuna refused). A trial that died before writing its manifest gets a minimal one, so every
    Optuna trial that ran has a record that agrees with it."""
    path = trial_dir / "manifest.json"
    manifest = read_json(path) or {"study": study, "trial": number, "start": None}
    manifest.update(facts)
    manifest.update(status=status, reason=reason, end=manifest.get("end") or time.time())
    write_json_atomic(path, manifest)
    metrics_path = trial_dir / "metrics.json"
    metrics = read_json(metrics_path)
    if metrics and metrics.get("status") != status:
        write_json_atomic(metrics_path, {**metrics, "status": status})
