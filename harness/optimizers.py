"""``train.optim``: which optimizer names are accepted, which one a trial uses, and whether it can run here.

Three checks, at two moments:

1. The config boundary (fast, imports nothing heavy): the name is one transformers 5 accepts
   (``TrainingArguments.optim``; ``NAMES`` is a copy of its ``OptimizerNames``, kept equal to the installed
   version's by a test) and not one the harness refuses everywhere (``REFUSED``: they need arguments or
   hardware the harness does not have).
2. The trial, once its device is known (:func:`check_available`): a paged optimizer needs CUDA (paging is
   CUDA unified memory; bitsandbytes on a CPU silently falls back to the unpaged optimizer, so accepting it
   would misreport what ran); any other name is built exactly as the Trainer builds it and takes one step
   on a probe tensor on the device, so a missing package (bitsandbytes, torchao, ...) or a backend that does
   not work on this device is refused before the model is loaded, with the reason.

The name a trial uses is ``train.optim`` when set, else the method's ``default_optim`` (qlora:
``paged_adamw_8bit``), else ``adamw_torch`` (:func:`resolve_optim`). Only a method's *default* adapts to
the device: without CUDA qlora's paged default becomes its unpaged twin and the record says so. A name
the user set is used as it is, or refused.
"""

from __future__ import annotations

from harness.errors import ConfigError

__all__ = ["DEFAULT", "NAMES", "REFUSED", "check_available", "check_name", "optimizer_class", "resolve_optim"]

DEFAULT = "adamw_torch"

# transformers 5's OptimizerNames values (checked against the installed version in tests/harness/test_train_knobs.py).
NAMES = (
    "adamw_torch", "adamw_torch_fused", "adamw_torch_xla", "adamw_torch_npu_fused", "adafactor", "adamw_anyprecision",
    "adamw_torch_4bit", "adamw_torch_8bit", "ademamix", "sgd", "adagrad", "adamw_bnb_8bit", "adamw_8bit",
    "ademamix_8bit", "lion_8bit", "lion_32bit", "paged_adamw_32bit", "paged_adamw_8bit", "paged_ademamix_32bit",
    "paged_ademamix_8bit", "paged_lion_32bit", "paged_lion_8bit", "rmsprop", "rmsprop_bnb", "rmsprop_bnb_8bit",
    "rmsprop_bnb_32bit", "galore_adamw", "galore_adamw_8bit", "galore_adafactor", "galore_adamw_layerwise",
    "galore_adamw_8bit_layerwise", "galore_adafactor_layerwise", "lomo", "adalomo", "grokadamw",
    "schedule_free_radam", "schedule_free_adamw", "schedule_free_sgd", "apollo_adamw", "apollo_adamw_layerwise",
    "stable_adamw",
)  # fmt: skip

_NO_TARGETS = "needs optim_target_modules (the layers it projects), which the harness does not expose"
_LOMO = "fuses the update into the backward pass through the Trainer's own LOMO path; the harness does not support it"
# Names transformers accepts that the harness refuses on every machine, with the reason.
REFUSED = {
    **dict.fromkeys([n for n in NAMES if n.startswith(("galore_", "apollo_"))], _NO_TARGETS),
    "lomo": _LOMO,
    "adalomo": _LOMO,
    "adamw_torch_xla": "needs a TPU (XLA device); the harness trains on cpu or cuda",
    "adamw_torch_npu_fused": "needs an Ascend NPU; the harness trains on cpu or cuda",
}

# A method's paged default without CUDA: the same optimizer unpaged (what bitsandbytes would silently run).
_UNPAGED = {
    "paged_adamw_8bit": "adamw_8bit",
    "paged_adamw_32bit": "adamw_torch",
    "paged_lion_8bit": "lion_8bit",
    "paged_lion_32bit": "lion_32bit",
    "paged_ademamix_8bit": "ademamix_8bit",
    "paged_ademamix_32bit": "ademamix",
}


def check_name(key: str, value: object) -> None:
    """ConfigError unless ``value`` is an optimizer name transformers accepts and the harness supports."""
    if not isinstance(value, str) or value not in NAMES:
        raise ConfigError(key, value, f"not an optimizer transformers accepts; one of: {', '.join(n for n in NAMES if n not in REFUSED)}")
    if value in REFUSED:
        raise ConfigError(key, value, REFUSED[value])


def resolve_optim(requested: str | None, method_default: str | None, *, device: str) -> tuple[str, str | None]:
    """(the optimizer name this trial uses, a note for the record when a method default was adapted)."""
    if requested is not None:
        return requested, None
    name = method_default or DEFAULT
    if name.startswith("paged_") and not device.startswith("cuda"):
        unpaged = _UNPAGED[name]
        return unpaged, f"the method's default {name} needs CUDA (paging is CUDA unified memory); {unpaged} on {device}"
    return name, None


def optimizer_class(name: str, *, learning_rate: float, device: str) -> tuple[type, dict]:
    """The optimizer class and keyword arguments the HF Trainer would use for ``name`` (ImportError when a
    package it needs is missing). Weight decay is left to the caller's parameter groups."""
    import tempfile

    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=tempfile.gettempdir(), optim=name, learning_rate=learning_rate,
                             use_cpu=not device.startswith("cuda"), report_to="none")
    return Trainer.get_optimizer_cls_and_kwargs(args)


def check_available(name: str, *, device: str, key: str = "train.optim") -> None:
    """ConfigError naming ``key``, the name and the reason when the optimizer cannot run on ``device``."""
    check_name(key, name)
    if name == DEFAULT:
        return  # torch's own AdamW runs everywhere torch does
    if name.startswith("paged_") and not device.startswith("cuda"):
        raise ConfigError(key, name, f"a paged optimizer needs CUDA (paging is CUDA unified memory) and the device is "
                                     f"{device}; bitsandbytes would silently run it unpaged. Use {_UNPAGED[name]} here")
    import torch

    try:
        cls, kwargs = optimizer_class(name, learning_rate=1e-3, device=device)
    except ImportError as exc:
        raise ConfigError(key, name, f"cannot be built here: {exc}") from None
    # One step on a probe big enough for 8-bit state (bitsandbytes keeps tensors under 4096 elements in 32 bits).
    param = torch.nn.Parameter(torch.ones(64, 64, device=device))
    try:
        opt = cls([param], **kwargs)
        if hasattr(opt, "train"):  # schedule-free optimizers step only in train mode (the Trainer switches them)
            opt.train()
        param.grad = torch.full_like(param, 0.1)
        opt.step()
    except Exception as exc:  # noqa: BLE001 - any failure means "does not run on this device"
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(key, name, f"does not run on {device}: {type(exc).__name__}: {first}") from None
    if not torch.isfinite(param).all() or torch.equal(param.detach(), torch.ones_like(param)):
        raise ConfigError(key, name, f"a probe step on {device} did not update the parameter correctly")
