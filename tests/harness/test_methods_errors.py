"""Errors that need the model or the machine: each is clear and raised before any training step."""

from __future__ import annotations

import sys

import pytest

torch = pytest.importorskip("torch")

from harness.errors import ConfigError  # noqa: E402
from harness.methods import MethodUnavailable, apply_method, method_config_from_dict, model_load_kwargs  # noqa: E402
from tests.harness.test_methods_models import tiny_model  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_qlora_on_cuda_without_a_gpu_is_unavailable():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(MethodUnavailable, match="qlora needs CUDA: device='cuda' but torch sees no CUDA GPU"):
        model_load_kwargs(method_config_from_dict({"name": "qlora"}), device="cuda")


def test_qlora_without_bitsandbytes_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails as if not installed
    with pytest.raises(MethodUnavailable, match=r"qlora needs bitsandbytes .*not installed \(pip install 'harness\[gpu\]'\)"):
        model_load_kwargs(method_config_from_dict({"name": "qlora"}), device="cpu")


def test_qlora_on_cpu_without_a_working_4bit_backend_needs_cuda(monkeypatch):
    bnb_functional = pytest.importorskip("bitsandbytes.functional")

    def no_cpu_kernel(*args, **kwargs):
        raise NotImplementedError("no CPU implementation of quantize_4bit")

    monkeypatch.setattr(bnb_functional, "quantize_4bit", no_cpu_kernel)
    with pytest.raises(MethodUnavailable, match="qlora needs CUDA: bitsandbytes .* no working 4-bit backend on cpu"):
        model_load_kwargs(method_config_from_dict({"name": "qlora"}), device="cpu")


def test_qlora_on_a_full_precision_model_is_refused():
    with pytest.raises(ConfigError, match="not loaded in 4 bits"):
        apply_method(tiny_model(), method_config_from_dict({"name": "qlora"}))


def test_other_methods_need_no_load_kwargs():
    assert model_load_kwargs(method_config_from_dict({"name": "lora"}), device="cpu") == {}


def test_adalora_needs_the_step_count():
    with pytest.raises(ConfigError, match="AdaLoRA needs the run's step count"):
        apply_method(tiny_model(), method_config_from_dict({"name": "adalora"}))


def test_adalora_schedule_must_leave_a_pruning_phase():
    cfg = method_config_from_dict({"name": "adalora", "tinit": 5, "tfinal": 5})
    with pytest.raises(ConfigError, match="no pruning phase"):
        apply_method(tiny_model(), cfg, total_steps=10)


def test_bitfit_on_a_model_without_biases_says_what_to_do():
    with pytest.raises(ConfigError, match="no bias parameters .* or set method.include_norm_weights=true"):
        apply_method(tiny_model("llama"), method_config_from_dict({"name": "bitfit"}))


def test_freeze_more_layers_than_the_model_has():
    with pytest.raises(ConfigError, match="the model has 2 layers"):
        apply_method(tiny_model(), method_config_from_dict({"name": "freeze", "num_trainable_layers": 3}))


def test_freeze_extra_module_that_does_not_exist():
    cfg = method_config_from_dict({"name": "freeze", "extra_modules": ["final_norm"]})
    with pytest.raises(ConfigError, match="final_norm not in the model; it has: model, model.embed_tokens, model.norm"):
        apply_method(tiny_model(), cfg)


@pytest.mark.parametrize("name", ["lora", "dora", "adalora", "ia3"])
def test_target_module_matching_nothing_fails_for_every_targeting_method(name):
    cfg = method_config_from_dict({"name": name, "use_dora": True} if name == "dora" else {"name": name})
    cfg = method_config_from_dict({**cfg.to_dict(), "target_modules": ["attn.c_attn"]})
    with pytest.raises(ConfigError, match="attn.c_attn match\\(es\\) no linear module; this model has: self_attn.q_proj, self_attn.k_proj"):
        apply_method(tiny_model("llama"), cfg, total_steps=10)


def test_ia3_feedforward_must_be_among_targets():
    cfg = method_config_from_dict({"name": "ia3", "target_modules": "qv", "feedforward_modules": ["down_proj"]})
    with pytest.raises(ConfigError, match="must be among the target modules"):
        apply_method(tiny_model(), cfg)
