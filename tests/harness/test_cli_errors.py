"""Bad input to the sweep command fails fast (< 5 s, nothing built) with a message naming what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO

CASES = [
    # (override, exit code, text that must appear): every config error exits 2, Hydra's own included
    ("method=nope", 2, "Could not find 'method/nope'"),
    ("model=nope", 2, "Could not find 'model/nope'"),
    ("+sweep=nope", 2, "Could not find 'sweep/nope'"),
    ("method.r=0", 2, "method.r=0"),
    ("method.target_modules=qvx", 2, "method.target_modules='qvx'"),
    ("method.r=[1,", 2, "no viable alternative"),
    ("train.max_steps=-5", 2, "train.max_steps=-5"),
]


@pytest.mark.parametrize("override,code,text", CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_fast_with_a_clear_message(tmp_path, override, code, text):
    started = time.time()
    sweep_arg = [] if override.startswith("+sweep") else ["+sweep=lora_rank"]
    proc = subprocess.run(
        [sys.executable, "-m", "harness.sweep", *sweep_arg, override, f"runs_dir={tmp_path}"],
        cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=60,
    )
    elapsed = time.time() - started
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert text in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("trial-*")), "no trial may start on bad input"
    assert elapsed < 5, f"took {elapsed:.1f} s"
