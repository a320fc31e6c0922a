"""Shared test setup: one cache for locally built models across the session, Hydra compose."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"

# The tiny base model is built once (about a minute) and reused by every test and run.
os.environ.setdefault("HARNESS_CACHE_DIR", str(REPO / ".cache" / "tests"))
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def compose():
    """compose(overrides) -> the fully resolved root config as a plain dict."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    def _compose(overrides: list[str] | None = None) -> dict:
        with initialize_config_dir(config_dir=str(CONF), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=list(overrides or []))
        return OmegaConf.to_container(cfg, resolve=True)

    return _compose


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Where Docker is promised (`make test`, CI), a skipped docker test is a failure, not a pass."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and item.get_closest_marker("docker") and os.environ.get("HARNESS_REQUIRE_DOCKER") == "1":
        report.outcome = "failed"
        report.longrepr = f"docker test skipped although HARNESS_REQUIRE_DOCKER=1: {report.longrepr}"
