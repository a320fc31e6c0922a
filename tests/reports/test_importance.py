"""reports.importance: parameter importances from (params, value) pairs, with no study storage."""

from __future__ import annotations

import random

import pytest

from reports.importance import param_importances


def _trials(n: int = 30, seed: int = 0) -> list[tuple[dict, float]]:
    """The objective depends on the rank only (best at 8); lr and the scheduler are noise."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        params = {"lr": 10 ** rng.uniform(-5, -3), "r": rng.choice([4, 8, 16, 32]), "scheduler": rng.choice(["cosine", "linear"])}
        out.append((params, -abs(params["r"] - 8) + 0.01 * rng.random()))
    return out


def test_the_parameter_that_drives_the_objective_explains_most_of_it():
    shares = param_importances(_trials(), specs={}, maximize=True)
    assert set(shares) == {"lr", "r", "scheduler"}
    assert max(shares, key=shares.get) == "r" and shares["r"] > 0.8
    assert sum(shares.values()) == pytest.approx(1.0)


def test_the_result_is_deterministic():
    assert param_importances(_trials(), specs={}, maximize=True) == param_importances(_trials(), specs={}, maximize=True)


def test_recorded_search_space_specs_are_used():
    specs = {"lr": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
             "r": {"type": "categorical", "choices": [4, 8, 16, 32]},
             "scheduler": {"type": "categorical", "choices": ["cosine", "linear", "constant"]}}
    shares = param_importances(_trials(), specs=specs, maximize=True)
    assert max(shares, key=shares.get) == "r"


def test_the_direction_decides_which_trials_are_good():
    """Minimising, the good trials are those far from rank 8: the rank still explains the objective."""
    shares = param_importances(_trials(), specs={}, maximize=False)
    assert max(shares, key=shares.get) == "r"


@pytest.mark.filterwarnings("ignore:Some regimes for parameter")
def test_a_value_outside_its_recorded_choices_is_left_out_of_that_trial():
    """Optuna refuses a trial whose value its distribution does not contain; the value is dropped instead."""
    trials = _trials()
    trials[0][0]["scheduler"] = "exotic"  # e.g. the search space changed mid-study
    specs = {"scheduler": {"type": "categorical", "choices": ["cosine", "linear"]}}
    shares = param_importances(trials, specs=specs, maximize=True)
    assert max(shares, key=shares.get) == "r"


def test_parameters_missing_from_some_trials_and_non_scalar_values_are_accepted():
    trials = _trials()
    for i, (params, _) in enumerate(trials):
        params["target_modules"] = ["q_proj", "v_proj"] if i % 2 else ["q_proj", "k_proj", "v_proj", "o_proj"]
        if i % 3 == 0:
            del params["lr"]
    shares = param_importances(trials, specs={}, maximize=True)
    assert set(shares) == {"lr", "r", "scheduler", "target_modules"}
    assert max(shares, key=shares.get) == "r"


def test_a_parameter_that_never_changed_explains_nothing():
    trials = [({**p, "seed": 0}, v) for p, v in _trials()]
    shares = param_importances(trials, specs={}, maximize=True)
    assert shares.get("seed", 0.0) == pytest.approx(0.0)
