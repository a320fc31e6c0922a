"""The ``model`` group's schema: which base model to load and how. Imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.errors import ConfigError

__all__ = ["ModelConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """``model`` group: a hub id, a local directory or a locally built ``builtin:`` model (harness.models)."""

    name: str
    path: str  # hub id, local directory, or builtin:<name>
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = False
    builtin: dict[str, Any] | None = None  # recipe of a locally built model (builtin: paths only)
    # None: transformers' choice (sdpa where the model supports it). flash_attention_2 needs CUDA and the
    # flash-attn package, checked when the model is loaded (harness.models.check_attention).
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = None

    def __post_init__(self) -> None:
        if self.path.startswith("builtin:") and not self.builtin:
            raise ConfigError("builtin", self.builtin, f"a recipe is required for {self.path}")
        if self.attn_implementation == "flash_attention_2" and self.dtype == "float32":
            raise ConfigError("attn_implementation", self.attn_implementation,
                              "FlashAttention-2 runs in float16 or bfloat16 only, and model.dtype=float32; use sdpa or set model.dtype")
