"""The data flow runs one way: evaluators never import harness; reports never import training code.
Heavy dependencies are not imported at package import time."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _imports(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {(str(path.relative_to(REPO)), a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(path.relative_to(REPO)), node.module))
    return found


def test_common_imports_only_the_standard_library():
    """common/ is the bottom layer every package may use: it imports the standard library and itself, nothing else."""
    bad = sorted((f, m) for f, m in _imports("common") if m.split(".")[0] not in (*sys.stdlib_module_names, "common"))
    assert not bad, bad
    climbing = []
    for path in (REPO / "common").rglob("*.py"):
        depth = len(path.relative_to(REPO / "common").parts)  # `from .` in common/files.py is depth 1: still common
        climbing += [str(path.relative_to(REPO)) for n in ast.walk(ast.parse(path.read_text()))
                     if isinstance(n, ast.ImportFrom) and n.level > depth]
    assert not climbing, f"relative imports above common/: {climbing}"


def test_evaluators_never_import_harness():
    bad = sorted(f for f, m in _imports("evaluators") if m == "harness" or m.startswith("harness."))
    assert not bad, bad


def test_reports_never_import_training_code():
    """Reports read records. The one exception: reports/importance.py hands the records to Optuna's
    importance analysis (an in-memory study; it never opens the study's storage)."""
    banned = ("harness", "torch", "transformers", "peft", "optuna", "evaluators")
    bad = sorted((f, m) for f, m in _imports("reports") if m.split(".")[0] in banned
                 and not (f == "reports/importance.py" and m.split(".")[0] == "optuna"))
    assert not bad, bad


def test_launchers_only_start_workers():
    """harness/launch/ starts and watches processes; training and evaluation stay in the worker."""
    banned = ("torch", "transformers", "peft", "evaluators", "harness.trial", "harness.train", "harness.data", "harness.methods")
    bad = sorted((f, m) for f, m in _imports("harness/launch") if m.startswith(banned))
    assert not bad, bad


@pytest.mark.parametrize("module", ["evaluators", "evaluators.execute", "harness.config", "harness.data", "harness.methods",
                                    "harness.launch", "harness.worker", "harness.identity", "reports.leaderboard",
                                    "reports.build", "reports.diagnosis", "evaluators.suites", "harness.suites", "common.files"])
def test_import_is_light(module):
    heavy = ('torch', 'transformers', 'peft', 'wandb', 'docker', 'lm_eval', 'submitit', 'optuna', 'plotly')
    code = f"import sys, {module}; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"{module} imports {out.stdout.strip()} at import time"
