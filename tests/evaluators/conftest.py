"""Fixtures shared by the evaluators' tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tiny():
    """(model, tokenizer): the embedded default's tiny model, built once and cached."""
    from harness.config import compose, trial_config
    from harness.models import load_model, load_tokenizer, resolve_model

    cfg = trial_config(compose([]))
    path, _ = resolve_model(cfg.model, cache_dir=cfg.cache_dir)
    return load_model(path, cfg=cfg.model, device="cpu"), load_tokenizer(path)
