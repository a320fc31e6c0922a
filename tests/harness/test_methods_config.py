"""Method configs: every shipped conf/method/*.yaml is valid, bad values fail early with the key, and importing
the registry stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from harness.errors import ConfigError
from harness.methods import METHODS, method_config_from_dict

CONF = Path(__file__).resolve().parents[2] / "conf" / "method"


def _yaml(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"), resolve=True)


def test_every_method_has_a_yaml_and_every_yaml_a_method():
    assert sorted(p.stem for p in CONF.glob("*.yaml")) == sorted(METHODS)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_shipped_yaml_is_a_valid_config(name):
    cfg = method_config_from_dict(_yaml(name))
    assert cfg.name == name
    assert method_config_from_dict(cfg.to_dict()) == cfg


def test_alpha_defaults_to_ratio_times_rank():
    cfg = method_config_from_dict({**_yaml("lora"), "r": 16, "alpha_ratio": 0.5})
    assert cfg.alpha == 8.0
    assert method_config_from_dict({**_yaml("lora"), "lora_alpha": 32}).alpha == 32.0


def test_target_modules_list_becomes_a_tuple():
    cfg = method_config_from_dict({"name": "lora", "target_modules": ["q_proj", "k_proj"]})
    assert cfg.target_modules == ("q_proj", "k_proj")
    hash(cfg)


# (method dict, key the error names, words in the message)
BAD_INPUTS = [
    ({"name": "nope"}, "method.name", "choices: full, lora"),
    ({"name": "lora", "r": 0}, "method.r", "positive integer"),
    ({"name": "lora", "r": -4}, "method.r", "positive integer"),
    ({"name": "lora", "r": 2.5}, "method.r", "expected an integer"),
    ({"name": "lora", "lora_alpha": 0}, "method.lora_alpha", "positive"),
    ({"name": "lora", "lora_alpha": -1.0}, "method.lora_alpha", "positive"),
    ({"name": "lora", "lora_dropout": 1.0}, "method.lora_dropout", "[0, 1)"),
    ({"name": "lora", "lora_dropout": -0.1}, "method.lora_dropout", "[0, 1)"),
    ({"name": "lora", "target_modules": "attention"}, "method.target_modules", "qv, qkvo, mlp, all-linear"),
    ({"name": "lora", "target_modules": []}, "method.target_modules", "non-empty"),
    ({"name": "lora", "init_lora_weights": "pissa"}, "method.init_lora_weights", "one of"),
    ({"name": "lora", "rank": 8}, "method.rank", "not a knob of method=lora"),
    ({"name": "dora", "use_dora": False}, "method.use_dora", "method=dora needs use_dora=true"),
    ({"name": "rslora"}, "method.use_rslora", "needs use_rslora=true"),
    ({"name": "loraplus"}, "method.loraplus_lr_ratio", "needs a loraplus_lr_ratio"),
    ({"name": "loraplus", "loraplus_lr_ratio": 0.5}, "method.loraplus_lr_ratio", ">= 1"),
    ({"name": "full", "default_learning_rate": 0}, "method.default_learning_rate", "positive"),
    ({"name": "prompt", "num_virtual_tokens": 0}, "method.num_virtual_tokens", "positive integer"),
    ({"name": "prefix", "num_virtual_tokens": 0}, "method.num_virtual_tokens", "positive integer"),
    ({"name": "ptuning", "num_virtual_tokens": -2}, "method.num_virtual_tokens", "positive integer"),
    ({"name": "ptuning", "encoder_reparameterization_type": "gru"}, "method.encoder_reparameterization_type", "mlp, lstm"),
    ({"name": "qlora", "r": 0}, "method.r", "positive integer"),
    ({"name": "qlora", "load_in_4bit": False}, "method.load_in_4bit", "use method=lora"),
    ({"name": "qlora", "bnb_4bit_quant_type": "int4"}, "method.bnb_4bit_quant_type", "nf4, fp4"),
    ({"name": "qlora", "bnb_4bit_compute_dtype": "float8"}, "method.bnb_4bit_compute_dtype", "bfloat16"),
    ({"name": "qlora", "optim": "sgd"}, "method.optim", "moved to train.optim"),
    ({"name": "qlora", "default_optim": "paged_sgd"}, "method.default_optim", "not an optimizer transformers accepts"),
    ({"name": "adalora", "init_r": 4, "target_r": 8}, "method.target_r", "<= init_r"),
    ({"name": "adalora", "lora_dropout": 1.5}, "method.lora_dropout", "[0, 1)"),
    ({"name": "adalora", "r": 8}, "method.r", "not a knob of method=adalora"),
    ({"name": "ia3", "target_modules": "everything"}, "method.target_modules", "preset"),
    ({"name": "freeze", "num_trainable_layers": 0}, "method.num_trainable_layers", "positive integer"),
    ({"name": "bitfit", "include_norm_weights": "yes"}, "method.include_norm_weights", "true or false"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "key", "words"), BAD_INPUTS, ids=[f"{b[1]}={b[0]}" for b in BAD_INPUTS])
def test_bad_input_is_a_clear_config_error(method, key, words):
    with pytest.raises(ConfigError) as err:
        method_config_from_dict(method)
    assert err.value.key == key
    assert words in str(err.value)


def test_importing_methods_and_building_configs_imports_nothing_heavy():
    code = (
        "import sys; from harness.methods import method_config_from_dict as f; f({'name': 'lora'}); "
        "heavy = [m for m in ('torch', 'peft', 'transformers', 'bitsandbytes') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=CONF.parents[1])
