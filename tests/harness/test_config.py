"""Every shipped config composes and validates; bad values fail with the key, the value and what is allowed."""

from __future__ import annotations

import pytest

from harness.config import study_config, trial_config
from harness.errors import ConfigError
from tests.conftest import CONF, REPO

GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir())
OPTIONS = [(g, f.stem) for g in GROUPS for f in sorted((CONF / g).glob("*.yaml"))]
SWEEPS = sorted(f.stem for f in (REPO / "sweeps" / "sweep").glob("*.yaml"))


def test_every_group_has_options():
    assert {"model", "method", "data", "train", "eval", "tracking", "storage", "launcher"} <= set(GROUPS)


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_shipped_option_composes_and_validates(compose, group, option):
    overrides = [f"{group}={option}"]
    if group == "launcher" and option != "local":
        overrides.append("storage=journal")
    raw = compose(overrides)
    trial_config(raw)
    study_config(raw)


@pytest.mark.parametrize("sweep", SWEEPS)
def test_every_shipped_sweep_composes_and_validates(compose, sweep):
    from harness.sweep import validate

    raw = compose([f"+sweep={sweep}"])
    study = validate(raw, [f"+sweep={sweep}"])
    assert study.name == sweep
    assert study.search_space, "a sweep without a search space is not a study"


def test_lora_rank_sweep_is_the_documented_study(compose):
    study = study_config(compose(["+sweep=lora_rank"]))
    space = {p.key: p for p in study.search_space}
    assert space["method.r"].choices == (4, 8, 16, 32, 64)
    assert space["train.learning_rate"].log is True
    assert set(space["method.target_modules"].choices) >= {"qv", "qkvo", "all-linear"}
    assert "method.alpha_ratio" in space  # alpha is tied to rank through a ratio


def test_trial_config_is_typed_not_dictconfig(compose):
    cfg = trial_config(compose())
    assert cfg.train.max_steps > 0 and isinstance(cfg.train.max_steps, int)
    assert cfg.eval.benchmarks[0].name == "toy"
    assert type(cfg.method).__module__.startswith("harness.methods")


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["train.max_steps=0"], "train.max_steps"),
        (["train.learning_rate=-1"], "train.learning_rate"),
        (["+train.max_stepz=3"], "train.max_stepz"),
        (["eval.ks=[1,50]"], "eval.ks"),
        (["eval.sandbox=vm"], "eval.sandbox"),
        (["eval.generation.top_p=0"], "eval.generation.top_p"),
        (["launcher.n_workers=2"], "storage"),
        (["study.n_trials=0"], "study.n_trials"),
        (["++study.sampler.name=bogus"], "study.sampler.name"),
    ],
)
def test_bad_values_name_the_key(compose, overrides, key):
    from harness.sweep import validate

    with pytest.raises(ConfigError) as err:
        validate(compose(overrides), overrides)
    assert err.value.key == key
    assert key in str(err.value)


def test_bad_search_space_choice_fails_before_training(compose):
    from harness.sweep import validate

    overrides = ["+sweep=lora_rank", "search_space.method\\.r.choices=[0,8]"]
    raw = compose(["+sweep=lora_rank"])
    raw["search_space"]["method.r"]["choices"] = [0, 8]
    with pytest.raises(ConfigError) as err:
        validate(raw, overrides[:1])
    assert "method.r" in str(err.value) and "0" in str(err.value)


def test_objective_must_be_a_produced_metric(compose):
    from harness.sweep import validate

    raw = compose()
    raw["study"]["objectives"] = [{"metric": "humaneval/pass@1", "direction": "maximize"}]
    with pytest.raises(ConfigError, match="humaneval/pass@1"):
        validate(raw, [])


@pytest.mark.parametrize("overrides", [
    [], ["train.learning_rate=3e-4"], ["+sweep=lora_rank", "method.r=16", "method.lora_alpha=32", "train.learning_rate=0.001"],
    ["method=dora", "method.r=4"], ["method.r=4", "method=dora"], ["seed=3", "eval.suites=[]"],
    ["eval.suites=[{name: stdlib, limit: 8}]"], ["tracking=none", "study.name='my study'"], ["model.name=null"],
    ["train.early_stopping={patience: 3}"], ["+sweep=smoke", "method.target_modules=[q_proj,v_proj]", "study.name=${method.name}-x"],
], ids=repr)
def test_compose_equals_a_full_hydra_compose(overrides):
    """Plain values are set on a cached composed config: the result is what Hydra composes from scratch."""
    from omegaconf import OmegaConf

    import harness.config as config

    config._COMPOSED.clear()
    fast = config.compose(overrides)
    config._COMPOSED.clear()
    full = OmegaConf.to_container(config._hydra_compose(tuple(overrides)), resolve=True)
    assert fast == full


def test_values_on_one_group_choice_compose_once(monkeypatch):
    import harness.config as config

    config._COMPOSED.clear()
    for r in (4, 8, 16):
        for lr in ("1e-3", "3e-3"):
            assert config.compose(["+sweep=lora_rank", f"method.r={r}", f"train.learning_rate={lr}"])["method"]["r"] == r
    assert config.compose(["+sweep=lora_rank"])["method"]["r"] == config._hydra_compose(("+sweep=lora_rank",)).method.r  # cache intact
    config.compose(["+sweep=lora_rank", "method=dora"])
    assert list(config._COMPOSED) == [("+sweep=lora_rank",), ("+sweep=lora_rank", "method=dora")]
    with pytest.raises(Exception, match="train.nonexistent"):  # Hydra's own error for an unknown key
        config.compose(["train.nonexistent=3"])
