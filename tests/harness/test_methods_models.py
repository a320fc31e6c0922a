"""Tiny causal LMs built locally from configs (no hub), shared by the method tests (holds no tests itself)."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["ARCHS", "fresh", "tiny_model"]

# hidden 32, 2 layers, GQA on Llama/Qwen2 so k/v differ from q in size (the closed-form test relies on it).
ARCHS: dict[str, dict[str, Any]] = {
    "llama": dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=64, max_position_embeddings=64),
    "qwen2": dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=64, max_position_embeddings=64),
    # bitsandbytes' CPU inference repacking needs in_features % 64 == 0 and out_features % 32 == 0: hidden 64
    # exercises it, intermediate 72 exercises the layers qlora must keep off it (like the tiny default's 344).
    "llama64": dict(hidden_size=64, intermediate_size=72, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, vocab_size=64, max_position_embeddings=64),
    "gpt2": dict(n_embd=32, n_layer=2, n_head=4, vocab_size=64, n_positions=64),
}  # fmt: skip

_CACHE: dict[str, Any] = {}


def tiny_model(arch: str = "llama") -> Any:
    """A fresh copy of the seeded tiny model of this architecture, in train mode, fp32."""
    if arch not in _CACHE:
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

        config_cls, model_cls = {
            "llama": (LlamaConfig, LlamaForCausalLM),
            "llama64": (LlamaConfig, LlamaForCausalLM),
            "qwen2": (Qwen2Config, Qwen2ForCausalLM),
            "gpt2": (GPT2Config, GPT2LMHeadModel),
        }[arch]
        torch.manual_seed(0)
        _CACHE[arch] = model_cls(config_cls(**ARCHS[arch]))
    return fresh(_CACHE[arch])


def fresh(model: Any) -> Any:
    out = copy.deepcopy(model)
    out.train()
    return out
