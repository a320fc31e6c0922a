"""The config-group contract, run against every entry of ``harness.config.GROUPS``: each group of conf/
is registered with its schema; every shipped option validates into that schema; an unknown key, a
wrong type or a missing required key fails naming the full dotted key (nested schemas included)."""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

import pytest

from evaluators.benchmarks import BENCHMARKS
from harness.config import GROUPS, compose, study_config, trial_config
from harness.errors import ConfigError
from harness.eval_config import BenchmarkSpec
from harness.schema import from_dict
from tests.conftest import CONF

OPTIONS = [(g, f.stem) for g in sorted(GROUPS) for f in sorted((CONF / g).glob("*.yaml"))]
SCALARS = (int, float, bool, str)


@pytest.fixture(scope="module")
def root() -> dict[str, Any]:
    return compose([])


def _error(group: str, root: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        GROUPS[group].config(root)
    return err.value


def _with(root: dict[str, Any], path: list[str], change) -> dict[str, Any]:
    """A copy of ``root`` with ``change(mapping)`` applied to the mapping at ``path``."""
    out = copy.deepcopy(root)
    node = out
    for key in path:
        node = node[key]
    change(node)
    return out


def _nodes(schema: type, value: dict[str, Any], path: list[str]):
    """(path, schema, mapping) for the group's mapping and every nested schema given as a mapping in it."""
    yield path, schema, value
    hints = typing.get_type_hints(schema)
    for key, sub in value.items():
        inner = [t for t in typing.get_args(hints[key]) if t is not type(None)] or [hints[key]]
        if isinstance(sub, dict) and len(inner) == 1 and dataclasses.is_dataclass(inner[0]):
            yield from _nodes(inner[0], sub, [*path, key])


def _scalar(hint: Any) -> bool:
    args = [t for t in typing.get_args(hint) if t is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return len(args) == 1 and _scalar(args[0])
    return hint in SCALARS or typing.get_origin(hint) is typing.Literal


def _schema(group: str, root: dict[str, Any]) -> type:
    """The group's schema for the default option (a method's own subclass of MethodConfig)."""
    return type(GROUPS[group].config(root))


def test_every_group_of_conf_is_registered():
    assert set(GROUPS) == {p.name for p in CONF.iterdir() if p.is_dir()}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_an_unknown_key_names_the_group_and_the_key(root, group):
    for path, _, _ in _nodes(_schema(group, root), root[group], [group]):
        err = _error(group, _with(root, path, lambda node: node.update(no_such_key=1)))
        assert err.key == ".".join([*path, "no_such_key"]), err
        assert str(err).startswith(f"{err.key}=1: ")


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_a_wrong_type_names_the_key(root, group):
    checked = 0
    for path, schema, value in _nodes(_schema(group, root), root[group], [group]):
        hints = typing.get_type_hints(schema)
        for key in value:
            if not _scalar(hints[key]):
                continue
            err = _error(group, _with(root, path, lambda node, key=key: node.update({key: {"not": "a scalar"}})))
            assert err.key == ".".join([*path, key]), err
            assert str(err).startswith(f"{err.key}={{'not': 'a scalar'}}: ")
            checked += 1
    assert checked, f"no scalar key in {group}"


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_a_missing_required_key_names_it(root, group):
    for path, schema, value in _nodes(_schema(group, root), root[group], [group]):
        for f in dataclasses.fields(schema):
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name in value:
                err = _error(group, _with(root, path, lambda node, name=f.name: node.pop(name)))
                assert err.key == ".".join([*path, f.name]), err


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_validates_into_its_schema(group, option):
    overrides = [f"{group}={option}"]
    if group == "launcher" and option != "local":
        overrides.append("storage=journal")
    raw = compose(overrides)
    assert isinstance(GROUPS[group].config(raw), GROUPS[group].schema)
    if group in ("storage", "launcher"):
        assert getattr(study_config(raw), group) == GROUPS[group].config(raw)
    else:
        assert getattr(trial_config(raw), group) == GROUPS[group].config(raw)


# -- the mechanism: a value check raises its key relative to its schema; from_dict adds where it sits


@dataclass(frozen=True)
class _Leaf:
    size: int = 1

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigError("size", self.size, "must be >= 1")


@dataclass(frozen=True)
class _Tree:
    leaves: tuple[_Leaf, ...] = ()
    leaf: _Leaf | None = None
    low: int = 0
    high: int = 1

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ConfigError("", {"low": self.low, "high": self.high}, "low must be <= high")


@pytest.mark.parametrize("data,key", [
    ({"leaves": [{}, {"size": 0}]}, "root.leaves[1].size"),
    ({"leaf": {"size": 0}}, "root.leaf.size"),
    ({"low": 2}, "root"),  # a check of the schema as a whole names the schema's own key
])  # fmt: skip
def test_value_checks_are_reported_under_the_full_key(data, key):
    with pytest.raises(ConfigError) as err:
        from_dict(_Tree, data, "root")
    assert err.value.key == key


def test_generation_settings_errors_from_evaluators_name_the_eval_key(root):
    bad = _with(root, ["eval", "generation"], lambda node: node.update(temperature=0.0, n_samples=3))
    err = _error("eval", bad)
    assert (err.key, err.value) == ("eval.generation.n_samples", 3)
    for key in ("seed", "engine"):  # the trial's seed and eval.engine: not keys of eval.generation
        assert _error("eval", _with(root, ["eval", "generation"], lambda node, key=key: node.update({key: 1}))).key == f"eval.generation.{key}"


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_a_benchmark_split_must_be_one_the_benchmark_declares(name):
    """``eval.benchmarks[].split`` is checked against the registry entry's splits (a fixed set of problems: "test" only)."""
    for split in BENCHMARKS[name].splits or ("test",):
        assert from_dict(BenchmarkSpec, {"name": name, "split": split}, "eval.benchmarks[0]").split == split
    with pytest.raises(ConfigError) as e:
        from_dict(BenchmarkSpec, {"name": name, "split": "nonexistent"}, "eval.benchmarks[0]")
    assert (e.value.key, e.value.value) == ("eval.benchmarks[0].split", "nonexistent")
