"""Generation engines (``eval.engine``): each turns prompts into completions, in input order.

- ``hf``: continuous batching over a Hugging Face causal LM, driven step by step (the default);
- ``hf_generate``: batches through ``model.generate``, for models ``hf`` cannot drive (its fallback).

The interface and what every engine guarantees are in ``_base.py``; what a vLLM engine would have
to do to join is in docs/generation.md. The contract test (tests/evaluators/test_engines.py) runs
against every entry of ``ENGINES``.
"""

from __future__ import annotations

from evaluators.engines._base import Engine, GenerationSettings, SettingsError, StopCheck, choose_tokens, row_uniforms, truncate_at_stop
from evaluators.engines.hf import HFEngine
from evaluators.engines.hf_generate import HFGenerateEngine

__all__ = ["ENGINES", "Engine", "GenerationSettings", "SettingsError", "StopCheck", "choose_tokens", "row_uniforms", "truncate_at_stop"]

# The registry: ``eval.engine`` -> the engine. A new engine is a file plus one entry here (and a case in the
# contract test's table). An engine imports torch only when it generates.
ENGINES: dict[str, Engine] = {engine.name: engine for engine in (HFEngine(), HFGenerateEngine())}
