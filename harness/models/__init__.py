"""Model and tokenizer loading: hub ids, local directories and locally built ``builtin:`` models
all go through ``from_pretrained``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.models.config import ModelConfig

__all__ = ["BUILTINS", "ModelConfig", "check_attention", "load_model", "load_tokenizer", "resolve_model"]

BUILTINS = ("tiny-llama",)


def resolve_model(cfg: ModelConfig, *, cache_dir: Path) -> tuple[str, str]:
    """Return (path or hub id to pass to from_pretrained, a hash identifying the weights)."""
    if cfg.path.startswith("builtin:"):
        name = cfg.path.split(":", 1)[1]
        if name not in BUILTINS:
            raise ConfigError("model.path", cfg.path, f"unknown builtin model; choose one of {[f'builtin:{b}' for b in BUILTINS]}")
        from harness.models.tiny import build_tiny

        path, digest = build_tiny(dict(cfg.builtin or {}), cache_dir)
        return str(path), f"builtin:{digest}"
    local = Path(cfg.path).expanduser()
    if local.is_dir():
        h = hashlib.sha256()
        for f in sorted(local.iterdir()):
            if f.name == "config.json":
                h.update(f.read_bytes())
            elif f.is_file():
                h.update(f"{f.name}:{f.stat().st_size}".encode())
        return str(local), f"local:{h.hexdigest()[:16]}"
    return cfg.path, f"hub:{cfg.path}"  # the resolved revision is added after loading (config._commit_hash)


def load_tokenizer(path: str, *, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def check_attention(cfg: ModelConfig, *, device: str) -> None:
    """ConfigError when ``model.attn_implementation`` cannot run on ``device``: FlashAttention-2 is a CUDA kernel
    from the flash-attn package, so it needs both (transformers would otherwise fail deep inside loading)."""
    if cfg.attn_implementation != "flash_attention_2":
        return
    import importlib.util

    import torch

    key, value = "model.attn_implementation", cfg.attn_implementation
    if not device.startswith("cuda") or not torch.cuda.is_available():
        raise ConfigError(key, value, f"FlashAttention-2 needs a CUDA GPU and this trial runs on {device}"
                                      f"{'' if torch.cuda.is_available() else ' (torch sees no CUDA device)'}; use sdpa or eager")
    if importlib.util.find_spec("flash_attn") is None:
        raise ConfigError(key, value, "FlashAttention-2 needs the flash-attn package, which is not installed "
                                      "(pip install flash-attn --no-build-isolation); use sdpa or eager")


def load_model(path: str, *, cfg: ModelConfig, device: str, extra: dict[str, Any] | None = None):
    """``from_pretrained`` with the config's dtype and attention implementation (hub, local and builtin models alike)."""
    import torch
    from transformers import AutoModelForCausalLM

    check_attention(cfg, device=device)
    dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.dtype]
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": cfg.trust_remote_code}
    if cfg.attn_implementation is not None:
        kwargs["attn_implementation"] = cfg.attn_implementation
    kwargs.update(extra or {})
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if "quantization_config" not in kwargs:
        model.to(device)
    else:  # before any forward: the base's suite scores run on it before the method is applied
        avoid_cpu_repacking(model)
    return model


def avoid_cpu_repacking(model: Any) -> int:
    """Turn off bitsandbytes' CPU inference repacking on 4-bit layers whose shape it cannot repack; returns on how
    many it is off (now or by an earlier call: calling it again is harmless).

    On CPUs with AVX512-BF16, bitsandbytes (checked: 0.50.2) repacks a 4-bit weight for a faster kernel at the
    first no-grad eval forward, and that repacking asserts out_features % 32 == 0 and in_features >= 64 (e.g. the
    tiny default's 344-wide MLP fails at generation). Such layers keep the generic de-quantize-and-matmul path.
    """
    count = 0
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False) and (module.out_features % 32 or module.in_features % 64):
            module.support_avx512bf16_for_cpu = False
            module.harness_repacking_off = True
        count += bool(getattr(module, "harness_repacking_off", False))
    return count
