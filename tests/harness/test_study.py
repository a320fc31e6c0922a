"""Search-space sampling: conditions, group choices, overrides; the grid sampler with conditional params."""

from __future__ import annotations

import optuna
import pytest

from harness.config import study_config
from harness.study import make_sampler, sample_params, to_override

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _study(compose, space, sampler):
    raw = compose()
    raw["search_space"] = space
    raw["study"]["sampler"] = sampler
    return study_config(raw)


SPACE = {
    "method": {"type": "categorical", "choices": ["lora", "ia3", "prompt"]},
    "method.r": {"type": "categorical", "choices": [4, 8], "when": {"method": ["lora"]}},
    "method.num_virtual_tokens": {"type": "int", "low": 4, "high": 8, "when": {"method": ["prompt"]}},
    "train.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
}


def test_conditional_parameters_only_where_they_apply(compose):
    study = _study(compose, SPACE, {"name": "random", "seed": 0})
    s = optuna.create_study(sampler=make_sampler(study))
    seen = set()
    for _ in range(30):
        trial = s.ask()
        params, overrides = sample_params(trial, study.search_space, base={"method": "lora"}, groups={"method"})
        seen.add(params["method"])
        assert ("method.r" in params) == (params["method"] == "lora")
        assert ("method.num_virtual_tokens" in params) == (params["method"] == "prompt")
        assert overrides[0] == f"method={params['method']}"  # the group is chosen before its keys are set
        s.tell(trial, 0.0)
    assert seen == {"lora", "ia3", "prompt"}


def test_grid_covers_every_choice_and_samples_conditional_params(compose):
    study = _study(compose, SPACE, {"name": "grid", "seed": 0})
    s = optuna.create_study(sampler=make_sampler(study))
    seen = []

    def objective(trial):
        params, _ = sample_params(trial, study.search_space, base={}, groups={"method"})
        seen.append(params)
        return 0.0

    s.optimize(objective, n_trials=10)  # the grid sampler stops the study once every cell is done
    assert sorted(p["method"] for p in seen) == ["ia3", "lora", "prompt"]
    assert [p["method.r"] in (4, 8) for p in seen if p["method"] == "lora"] == [True]


def test_when_falls_back_to_the_base_config(compose):
    study = _study(compose, {"method.r": {"type": "categorical", "choices": [4], "when": {"method": ["lora"]}}}, {"name": "random"})
    trial = optuna.create_study().ask()
    assert sample_params(trial, study.search_space, base={"method": "full"}, groups={"method"})[0] == {}
    assert sample_params(trial, study.search_space, base={"method": "lora"}, groups={"method"})[0] == {"method.r": 4}


@pytest.mark.parametrize(
    "key,value,group,expected",
    [("method", "dora", True, "method=dora"), ("method.r", 16, False, "method.r=16"),
     ("train.learning_rate", 0.0015, False, "train.learning_rate=0.0015"),
     ("method.target_modules", "all-linear", False, 'method.target_modules="all-linear"'),
     ("method.use_dora", True, False, "method.use_dora=true")],
)
def test_sampled_values_become_hydra_overrides(key, value, group, expected):
    assert to_override(key, value, group=group) == expected
