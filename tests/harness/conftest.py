"""Fixtures shared by the harness tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def wandb_dirs(tmp_path, monkeypatch) -> Path:
    """Every place W&B writes (runs, cache, settings, artifact staging) inside tmp_path."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        (tmp_path / var.lower()).mkdir()
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    return tmp_path
