"""Parameter importances from trial records, through Optuna's own analysis.

The study's storage may be gone, remote or locked by running workers; the records are not.
So an in-memory Optuna study is rebuilt from each complete trial's parameters and objective
value, with the search space recorded in ``study.json`` (``search_space_spec``) where there is
one, else distributions inferred from the values, and handed to PED-ANOVA (Optuna's default
evaluator, which needs no scikit-learn).
"""

from __future__ import annotations

from typing import Any

__all__ = ["param_importances"]


def _distribution(key: str, values: list[Any], spec: dict[str, Any] | None):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    spec = spec or {}
    kind = spec.get("type")
    if kind == "categorical" or (kind is None and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
        choices = list(spec.get("choices") or sorted({str(v): v for v in values}.values(), key=str))  # lists are unhashable
        return CategoricalDistribution([c if isinstance(c, (int, float, str, bool)) or c is None else str(c) for c in choices])
    low = min(values + ([spec["low"]] if spec.get("low") is not None else []))
    high = max(values + ([spec["high"]] if spec.get("high") is not None else []))
    if low == high:
        return CategoricalDistribution([low])
    if kind == "int" or (kind is None and all(isinstance(v, int) for v in values)):
        return IntDistribution(int(low), int(high), log=bool(spec.get("log")) and low > 0)
    return FloatDistribution(float(low), float(high), log=bool(spec.get("log")) and low > 0)


def _fits(distribution, value: Any) -> bool:
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (TypeError, ValueError):
        return False


def param_importances(trials: list[tuple[dict[str, Any], float]], *, specs: dict[str, dict[str, Any]],
                      maximize: bool) -> dict[str, float]:
    """Parameter -> share of the objective's variance it explains (sums to 1), from (params, value) pairs."""
    import optuna
    from optuna.trial import create_trial

    keys = sorted({k for params, _ in trials for k in params})
    dists = {k: _distribution(k, [p[k] for p, _ in trials if k in p], specs.get(k)) for k in keys}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if maximize else "minimize")
    for params, value in trials:
        kept = {k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for k, v in params.items() if k in dists}
        kept = {k: v for k, v in kept.items() if _fits(dists[k], v)}
        study.add_trial(create_trial(params=kept, distributions={k: dists[k] for k in kept}, value=value))
    return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
