"""The data stage: formats, templates, prompt-loss masking, packing, hygiene.

    from harness.data import DataConfig, prepare_data, make_collator
    cfg = DataConfig.from_dict(hydra_cfg["data"])
    prepared = prepare_data(cfg, tokenizer=tok, eval_benchmarks=["toy"], cache_dir=..., seed=0)
    collator = make_collator(tok, packing=cfg.packing)

``python -m harness.data [overrides]`` runs hygiene alone. Importing this package pulls
in no torch, transformers, datasets or datasketch: those load inside the functions.
"""

from harness.data.collate import make_collator, padding_waste, supports_packing
from harness.data.config import DataConfig, HygieneConfig, SourceConfig
from harness.data.prepare import PreparedData, clean_sources, prepare_data
from harness.data.templates import format_prompt, prompt_ids

__all__ = [
    "DataConfig",
    "HygieneConfig",
    "SourceConfig",
    "PreparedData",
    "prepare_data",
    "clean_sources",
    "make_collator",
    "padding_waste",
    "supports_packing",
    "format_prompt",
    "prompt_ids",
]
