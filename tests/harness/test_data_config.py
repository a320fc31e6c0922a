"""DataConfig: fast, typed, and every bad value names its key."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.data import DataConfig
from harness.errors import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf" / "data"


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_data_config_validates(path):
    d = yaml.safe_load(path.read_text())
    if d.get("path") in (None, "???") and not d.get("mixture"):
        d["path"] = "train.jsonl"  # configs meant to be completed on the command line (data.path=...)
    cfg = DataConfig.from_dict(d)
    assert cfg.sources


def test_toy_defaults():
    cfg = DataConfig.from_dict(yaml.safe_load((CONF / "toy.yaml").read_text()))
    assert (cfg.cutoff_len, cfg.template, cfg.format, cfg.path) == (256, "none", "prompt_completion", "toy")
    assert cfg.validation.split == "validation"


@pytest.mark.parametrize(
    "override, key, message",
    [
        ({"format": "xml"}, "data.format", "expected one of ['alpaca', 'sharegpt', 'prompt_completion']"),
        ({"template": "vicuna"}, "data.template", "expected one of ['none', 'alpaca', 'chatml', 'tokenizer']"),
        ({"cutoff_len": "long"}, "data.cutoff_len", "expected an integer"),
        ({"packing": "yes"}, "data.packing", "expected true or false"),
        ({"on_error": "ignore"}, "data.on_error", "expected one of ['raise', 'skip']"),
        ({"families": ["add", "nope"]}, "data.families", "expected toy families"),
        ({"hygiene": {"near_dedup_threshold": 1.5}}, "data.hygiene.near_dedup_threshold", "expected a value in"),
        ({"hygiene": {"parse_code": "maybe"}}, "data.hygiene.parse_code", "expected one of ['fenced', 'whole', 'off']"),
        ({"hygiene": {"bogus": 1}}, "data.hygiene.bogus", "unknown key"),
        ({"colour": "red"}, "data.colour", "unknown key"),
        ({"mixture": [{"path": "a.jsonl", "ratio": -1}]}, "data.mixture[0].ratio", "expected"),
    ],
)
def test_bad_values_name_the_key(override, key, message):
    with pytest.raises(ConfigError) as err:
        DataConfig.from_dict({"path": "toy", **override})
    assert err.value.key == key
    assert message in str(err.value)
    assert str(err.value).startswith(f"{key}=")


def test_missing_path_is_a_config_error():
    with pytest.raises(ConfigError, match="data.path=None"):
        DataConfig.from_dict({"format": "alpaca"})


def test_import_is_light():
    code = "import sys, harness.data; print(sorted(m for m in ('torch', 'transformers', 'datasets', 'datasketch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert out.strip() == "[]"
