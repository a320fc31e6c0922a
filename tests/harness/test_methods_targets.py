"""Target-module presets resolve against real module names, and LoRA's trainable count is the closed form
r * (d_in + d_out) per targeted linear (+ d_out for DoRA's magnitude) for every preset on three architectures."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from harness.errors import ConfigError  # noqa: E402
from harness.methods import apply_method, method_config_from_dict, resolve_target_modules  # noqa: E402
from tests.harness.test_methods_models import ARCHS, tiny_model  # noqa: E402


def _layer_linears(arch: str) -> dict[str, tuple[int, int]]:
    """Per decoder layer: module name -> (d_in, d_out), written from the config, not read from the model."""
    c = ARCHS[arch]
    if arch == "gpt2":
        h = c["n_embd"]
        return {"c_attn": (h, 3 * h), "attn.c_proj": (h, h), "c_fc": (h, 4 * h), "mlp.c_proj": (4 * h, h)}
    h, i = c["hidden_size"], c["intermediate_size"]
    kv = c["num_key_value_heads"] * h // c["num_attention_heads"]
    return {
        "q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
        "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h),
    }  # fmt: skip


# preset -> modules it targets, per naming family
EXPECTED = {
    "llama-style": {
        "qv": ["q_proj", "v_proj"],
        "qkvo": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "mlp": ["gate_proj", "up_proj", "down_proj"],
        "all-linear": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    },
    "gpt2": {
        "qv": ["c_attn"],
        "qkvo": ["c_attn", "attn.c_proj"],
        "mlp": ["c_fc", "mlp.c_proj"],
        "all-linear": ["c_attn", "attn.c_proj", "c_fc", "mlp.c_proj"],
    },
}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _closed_form(arch: str, modules: list[str], r: int, dora: bool) -> int:
    dims = _layer_linears(arch)
    layers = ARCHS[arch].get("num_hidden_layers", ARCHS[arch].get("n_layer"))
    per_layer = sum(r * (dims[m][0] + dims[m][1]) + (dims[m][1] if dora else 0) for m in modules)
    return layers * per_layer


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
@pytest.mark.parametrize("preset", ["qv", "qkvo", "mlp", "all-linear"])
@pytest.mark.parametrize(("name", "r"), [("lora", 4), ("dora", 8)])
def test_lora_trainable_params_equal_the_closed_form(arch, preset, name, r):
    modules = EXPECTED["gpt2" if arch == "gpt2" else "llama-style"][preset]
    cfg = method_config_from_dict({"name": name, "r": r, "use_dora": name == "dora", "target_modules": preset})
    applied = apply_method(tiny_model(arch), cfg)
    assert applied.trainable_params == _closed_form(arch, modules, r, dora=name == "dora")
    assert applied.info["closed_form_trainable"] == applied.trainable_params
    # total = base parameters + the adapter
    base_total = sum(p.numel() for p in tiny_model(arch).parameters())
    assert applied.total_params == base_total + applied.trainable_params


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
@pytest.mark.parametrize("preset", ["qv", "qkvo", "mlp", "all-linear"])
def test_presets_resolve_to_the_models_own_names(arch, preset):
    resolved = resolve_target_modules(tiny_model(arch), preset)
    expected = EXPECTED["gpt2" if arch == "gpt2" else "llama-style"][preset]
    if preset == "all-linear" and arch == "gpt2":
        expected = ["c_attn", "c_proj", "c_fc"]  # all-linear uses leaf names: one c_proj covers both
    assert sorted(resolved) == sorted(expected)


def test_explicit_names_are_kept_when_they_exist():
    assert resolve_target_modules(tiny_model("llama"), ["q_proj", "mlp.down_proj"]) == ("q_proj", "mlp.down_proj")


def test_a_name_matching_nothing_lists_what_exists():
    with pytest.raises(ConfigError) as err:
        resolve_target_modules(tiny_model("gpt2"), ["q_proj"])
    message = str(err.value)
    assert err.value.key == "method.target_modules"
    assert "q_proj match(es) no linear module" in message
    assert "attn.c_attn" in message and "mlp.c_fc" in message


def test_apply_fails_before_training_when_a_target_matches_nothing():
    cfg = method_config_from_dict({"name": "lora", "target_modules": ["query_key_value"]})
    with pytest.raises(ConfigError, match="query_key_value"):
        apply_method(tiny_model("llama"), cfg)


def test_lm_head_is_never_targeted():
    assert "lm_head" not in resolve_target_modules(tiny_model("llama"), "all-linear")
