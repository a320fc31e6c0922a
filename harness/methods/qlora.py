"""QLoRA: LoRA adapters on a base model loaded in 4 bits by bitsandbytes (NF4, double quantization), trained with
a paged 8-bit AdamW (its `default_optim`, used when `train.optim` is unset; see harness/optimizers.py).

Where it runs: CUDA, or a CPU when the installed bitsandbytes has a working CPU 4-bit backend. That is checked,
not assumed: `load_kwargs` quantizes and dequantizes a small tensor with the configured settings before any model
is loaded, and raises MethodUnavailable with the reason when that fails. (Checked here: bitsandbytes 0.50.2 on
CPU loads, trains and saves NF4 QLoRA; paging is a CUDA unified-memory feature, so on CPU the paged optimizer
keeps its state in ordinary memory.) The adapter is not merged for generation: merging into 4-bit weights would
re-quantize them (lossy), so generation runs through the peft model.

The optimizer and gradient checkpointing are `train.optim` and `train.gradient_checkpointing`, as for every
method; the trainer builds the one and turns on the other (harness.train).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.methods._base import AppliedMethod, MethodUnavailable, check_bool, check_choice, count_parameters
from harness.methods.lora import LoraMethodConfig, build_lora
from harness.models import avoid_cpu_repacking

__all__ = ["QloraConfig", "apply", "load", "load_kwargs"]


@dataclass(frozen=True)
class QloraConfig(LoraMethodConfig):
    """LoRA knobs plus bitsandbytes' 4-bit loading knobs (transformers.BitsAndBytesConfig).

    bnb_4bit_compute_dtype: dtype of the de-quantized matmuls (and of the unquantized parts of the model).
    default_optim: paged_adamw_8bit, as in the QLoRA paper (train.optim, when set, wins).
    """

    load_in_4bit: bool = True
    bnb_4bit_quant_type: str = "nf4"
    bnb_4bit_use_double_quant: bool = True
    bnb_4bit_compute_dtype: str = "bfloat16"
    default_optim: str | None = "paged_adamw_8bit"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.load_in_4bit is not True:
            raise ConfigError("load_in_4bit", self.load_in_4bit, "qlora loads the base in 4 bits (true); use method=lora for a full-precision base")
        check_choice("bnb_4bit_quant_type", self.bnb_4bit_quant_type, ("nf4", "fp4"))
        check_bool("bnb_4bit_use_double_quant", self.bnb_4bit_use_double_quant)
        check_choice("bnb_4bit_compute_dtype", self.bnb_4bit_compute_dtype, ("bfloat16", "float16", "float32"))


def load_kwargs(cfg: QloraConfig, *, device: str) -> dict[str, Any]:
    """`from_pretrained` kwargs that load the base in 4 bits on `device`, or MethodUnavailable saying why not."""
    import torch

    backend = _check_backend(cfg, device)
    from transformers import BitsAndBytesConfig

    compute_dtype = getattr(torch, cfg.bnb_4bit_compute_dtype)
    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=cfg.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=cfg.bnb_4bit_use_double_quant,
        bnb_4bit_compute_dtype=compute_dtype,
    )
    target = torch.cuda.current_device() if backend == "cuda" else "cpu"
    return {"quantization_config": quantization, "dtype": compute_dtype, "device_map": {"": target}}


def _check_backend(cfg: QloraConfig, device: str) -> str:
    """'cuda' or 'cpu' when bitsandbytes 4-bit works there; MethodUnavailable (a user-facing reason) otherwise."""
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MethodUnavailable(f"qlora needs CUDA: device={device!r} but torch sees no CUDA GPU on this machine")
        backend = "cuda"
    else:
        backend = "cpu"
    try:
        import bitsandbytes as bnb
        import bitsandbytes.functional as F
    except ImportError as exc:
        raise MethodUnavailable(
            "qlora needs bitsandbytes for 4-bit loading, and it is not installed (pip install 'harness[gpu]'); "
            "on a machine without CUDA it also needs a bitsandbytes release with a CPU 4-bit backend"
        ) from exc
    # Quantize and de-quantize a small tensor exactly as the model will be: proves the backend works here.
    try:
        x = torch.randn(64, 64, device=backend, dtype=getattr(torch, cfg.bnb_4bit_compute_dtype))
        packed, state = F.quantize_4bit(x, quant_type=cfg.bnb_4bit_quant_type, compress_statistics=cfg.bnb_4bit_use_double_quant)
        error = (F.dequantize_4bit(packed, state) - x).abs().mean().item()
    except Exception as exc:  # noqa: BLE001 - any failure means "no working 4-bit backend here"
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise MethodUnavailable(
            f"qlora needs CUDA: bitsandbytes {bnb.__version__} has no working 4-bit backend on {backend} "
            f"({reason}); run on a GPU machine (device=cuda)"
        ) from exc
    if not error < 0.5:  # NF4/FP4 of N(0, 1) values is off by ~0.1 on average; far more means a broken kernel
        raise MethodUnavailable(f"qlora needs CUDA: bitsandbytes {bnb.__version__} 4-bit on {backend} is inaccurate (mean error {error:.3f})")
    return backend


def apply(model: Any, cfg: QloraConfig, *, total_steps: int | None = None) -> AppliedMethod:
    """`model` must have been loaded with `load_kwargs(cfg)` (its target linears are bitsandbytes 4-bit layers)."""
    from peft import prepare_model_for_kbit_training

    if not getattr(model, "is_loaded_in_4bit", False):
        raise ConfigError("method.name", "qlora", "the model was not loaded in 4 bits: load it with model_load_kwargs(cfg)")
    # Freezes the base and casts norms to fp32 for stability. Checkpointing (train.gradient_checkpointing) is
    # turned on by the trainer for every method alike, non-reentrant, so it needs nothing from this step.
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    repacking_off = avoid_cpu_repacking(model)
    peft_model, info = build_lora(model, cfg)
    trainable, total = count_parameters(peft_model)
    info["quantization"] = {
        "quant_type": cfg.bnb_4bit_quant_type,
        "double_quant": cfg.bnb_4bit_use_double_quant,
        "compute_dtype": cfg.bnb_4bit_compute_dtype,
        "device": str(next(peft_model.parameters()).device),
        "cpu_inference_repacking_disabled_on": repacking_off,
    }
    return AppliedMethod(peft_model, trainable, total, mergeable=False, info=info)


def load(base_model: Any, path: str) -> Any:
    """The saved adapter on a 4-bit base prepared as in training (norms in fp32), so logits match the trained model."""
    from peft import PeftModel, prepare_model_for_kbit_training

    base_model = prepare_model_for_kbit_training(base_model, use_gradient_checkpointing=False)
    avoid_cpu_repacking(base_model)
    return PeftModel.from_pretrained(base_model, path)
