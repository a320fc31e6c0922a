"""The one way a config group becomes a typed object: :func:`from_dict`.

A schema is a frozen dataclass with typed fields (``Literal`` for a closed set of names) and
value checks in ``__post_init__``. :func:`from_dict` builds it from a plain mapping and rejects
an unknown key, a wrong type or a missing required key, naming the full dotted key.

Keys in value checks are **relative to the schema**: ``TrainConfig.__post_init__`` raises
``ConfigError("warmup_ratio", ...)``, a check of the schema as a whole uses ``""``. The schema does
not know where it sits (``train.probe``, ``data.mixture[1]``); :func:`from_dict` does, and re-raises
the error with its prefix (``data.mixture[1].ratio``). Settings owned by ``evaluators`` (which
never imports harness) raise :class:`evaluators.engines.SettingsError` with the same shape; it is
translated into a ConfigError here. Nothing heavy is imported.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from evaluators.engines import SettingsError
from harness.errors import ConfigError

__all__ = ["check_one_of", "check_positive", "check_type", "from_dict", "join_key"]

T = TypeVar("T")

# What a schema's __post_init__ may raise with a key relative to the schema.
_RELATIVE_ERRORS = (ConfigError, SettingsError)


def join_key(prefix: str, key: str) -> str:
    """``prefix`` + a key relative to it: ``("data", "mixture[1].ratio")`` -> ``data.mixture[1].ratio``."""
    if not key:
        return prefix
    if not prefix:
        return key
    return f"{prefix}{key}" if key.startswith("[") else f"{prefix}.{key}"


def check_positive(key: str, value: float, *, allow_zero: bool = False) -> None:
    """ConfigError unless ``value`` > 0 (or >= 0 with ``allow_zero``)."""
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(key, value, "must be >= 0" if allow_zero else "must be > 0")


def check_one_of(key: str, value: object, allowed: Iterable[str]) -> None:
    """ConfigError unless ``value`` is one of the names of a registry (``allowed``)."""
    names = list(allowed)
    if value not in names:
        raise ConfigError(key, value, f"expected one of {names}")


def check_type(key: str, value: Any, tp: Any) -> Any:
    """``value`` checked against the type hint ``tp`` (lists become tuples, ints floats where a float is
    wanted, mappings nested dataclasses); ConfigError naming ``key`` otherwise."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [arg for arg in args if arg is not type(None)]
        if len(options) == 1:  # X | None: X's own error (a nested schema names its own key)
            return check_type(key, value, options[0])
        errors = []
        for arg in options:
            try:
                return check_type(key, value, arg)
            except ConfigError as e:
                errors.append(e.expected)
        raise ConfigError(key, value, " or ".join(errors))
    if origin is Literal:
        if value not in args:
            raise ConfigError(key, value, f"expected one of {list(args)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, value, "expected a list")
        inner = args[0] if args else Any
        return tuple(check_type(f"{key}[{i}]", v, inner) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, value, "expected a mapping")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else from_dict(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, value, "expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, value, "expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, value, "expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, value, "expected a string")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(key, value, "expected a path")
        return Path(value)
    return value


def from_dict(cls: type[T], data: Any, prefix: str) -> T:
    """Build dataclass ``cls`` from a plain mapping found at key ``prefix``, rejecting unknown keys,
    wrong types and missing required keys; a value check of ``cls`` fails with its key under ``prefix``."""
    if not isinstance(data, Mapping):
        raise ConfigError(prefix, data, f"expected a mapping of {cls.__name__} fields")
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = {f.name for f in fields}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(join_key(prefix, unknown[0]), data[unknown[0]], f"unknown key; allowed keys: {sorted(names)}")
    kwargs = {}
    for f in fields:
        key = join_key(prefix, f.name)
        if f.name in data:
            kwargs[f.name] = check_type(key, data[f.name], hints[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(key, None, "this key is required")
    try:
        return cls(**kwargs)
    except _RELATIVE_ERRORS as e:
        raise ConfigError(join_key(prefix, e.key), e.value, e.expected) from None
