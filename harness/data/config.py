"""The typed ``data`` config: what to load, how to format it, how to clean it.

Built from the plain dict of the Hydra ``data`` group by :meth:`DataConfig.from_dict`,
which checks every key and fails with :class:`~harness.errors.ConfigError` naming the
key, the value and what was expected. Nothing heavy is imported here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError

__all__ = ["DataConfig", "HygieneConfig", "SourceConfig", "FORMATS", "TEMPLATES"]

FORMATS = ("alpaca", "sharegpt", "prompt_completion")
# "none": the prompt text is used raw (HumanEval-style code completion).
# "tokenizer": the tokenizer's own chat template (tokenizer.apply_chat_template).
TEMPLATES = ("none", "alpaca", "chatml", "tokenizer")
ON_ERROR = ("raise", "skip")
OVERLONG = ("truncate", "drop")
TRAIN_ON = ("all", "last")
PARSE_CODE = ("fenced", "whole", "off")


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _check_keys(cls, d: Mapping, prefix: str) -> None:
    unknown = sorted(set(d) - _fields(cls))
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}", d[unknown[0]], f"unknown key; expected one of {', '.join(sorted(_fields(cls)))}")


def _choice(key: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(key, value, f"expected one of {', '.join(allowed)}")


def _number(key: str, value: object, *, lo: float | None = None, hi: float | None = None, integer: bool = False,
            optional: bool = False) -> None:
    if value is None and optional:
        return
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(key, value, f"expected {'an integer' if integer else 'a number'}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(key, value, f"expected a value in [{lo}, {hi}]")


def _bool(key: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(key, value, "expected true or false")


@dataclass(frozen=True)
class SourceConfig:
    """One data source: a local ``.jsonl``/``.json`` file, a Hugging Face dataset name, or ``toy``."""

    path: str
    format: str = "prompt_completion"
    split: str = "train"
    ratio: float = 1.0  # share of the mixture (normalised over all sources)
    name: str | None = None  # label in the report; defaults to the path
    families: tuple[str, ...] | None = None  # toy only: restrict to these families
    subset: str | None = None  # HF dataset configuration name

    @property
    def label(self) -> str:
        return self.name or (f"{self.path}:{self.split}" if self.path == "toy" else self.path)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], prefix: str) -> SourceConfig:
        _check_keys(cls, d, prefix)
        if not isinstance(d.get("path"), str) or not d["path"]:
            raise ConfigError(f"{prefix}.path", d.get("path"), "expected a .jsonl/.json file, a Hugging Face dataset name, or 'toy'")
        d = dict(d)
        _choice(f"{prefix}.format", d.setdefault("format", "prompt_completion"), FORMATS)
        _number(f"{prefix}.ratio", d.setdefault("ratio", 1.0), lo=0.0)
        if d["ratio"] <= 0:
            raise ConfigError(f"{prefix}.ratio", d["ratio"], "expected a positive number")
        fam = d.get("families")
        if fam is not None:
            if isinstance(fam, str) or not all(isinstance(f, str) for f in fam):
                raise ConfigError(f"{prefix}.families", fam, "expected a list of toy family names")
            from evaluators.benchmarks.toy import FAMILIES

            known = {f.key for f in FAMILIES}
            bad = [f for f in fam if f not in known]
            if bad:
                raise ConfigError(f"{prefix}.families", bad[0], f"expected toy families from {', '.join(sorted(known))}")
            d["families"] = tuple(fam)
        return cls(**d)


@dataclass(frozen=True)
class HygieneConfig:
    """Rules, deduplication and decontamination (see docs/data.md for why these defaults)."""

    enabled: bool = True
    min_tokens: int = 1  # shorter records (prompt + answer, in tokens) are dropped
    max_tokens: int | None = None  # longer records are dropped (None: only cutoff_len truncation applies)
    parse_code: str = "fenced"  # fenced: ```python blocks must parse; whole: prompt+answer must parse; off
    pii: bool = True  # drop records with e-mail addresses, public IPv4 addresses or API-key-like strings
    exact_dedup: bool = True
    near_dedup: bool = True
    near_dedup_threshold: float = 0.8  # estimated Jaccard similarity of token shingles
    num_perm: int = 128  # MinHash permutations
    shingle_size: int = 5  # tokens per shingle (identifiers abstracted, comments dropped)
    decontaminate: bool = True
    decontam_ngram: int = 10  # n-gram length (normalised tokens)
    decontam_threshold: float = 0.5  # share of a part's distinctive n-grams (literal view) found in one record
    decontam_min_ngrams: int = 1  # parts with fewer distinctive n-grams (too short to tell apart) are not checked
    decontam_renamed_threshold: float = 0.8  # the same share in the identifier-abstracted view ...
    decontam_renamed_min_ngrams: int = 6  # ... for code parts with at least this many distinctive n-grams
    examples_per_reason: int = 3  # examples kept in the report for each drop reason
    # Benchmarks to decontaminate against besides the trial's own evaluation benchmarks
    # (real code data should always be checked against HumanEval and MBPP).
    extra_benchmarks: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], prefix: str = "data.hygiene") -> HygieneConfig:
        _check_keys(cls, d, prefix)
        for key in ("enabled", "pii", "exact_dedup", "near_dedup", "decontaminate"):
            if key in d:
                _bool(f"{prefix}.{key}", d[key])
        for key in ("min_tokens", "num_perm", "shingle_size", "decontam_ngram", "decontam_min_ngrams", "decontam_renamed_min_ngrams",
                    "examples_per_reason"):
            if key in d:
                _number(f"{prefix}.{key}", d[key], lo=0 if key in ("min_tokens", "examples_per_reason") else 1, integer=True)
        if "max_tokens" in d:
            _number(f"{prefix}.max_tokens", d["max_tokens"], lo=1, integer=True, optional=True)
        for key in ("near_dedup_threshold", "decontam_threshold", "decontam_renamed_threshold"):
            if key in d:
                _number(f"{prefix}.{key}", d[key], lo=0.0, hi=1.0)
                if d[key] <= 0:
                    raise ConfigError(f"{prefix}.{key}", d[key], "expected a value in (0, 1]")
        if "parse_code" in d:
            _choice(f"{prefix}.parse_code", d["parse_code"], PARSE_CODE)
        extra = d.get("extra_benchmarks")
        if extra is not None:
            if isinstance(extra, str) or not all(isinstance(b, str) for b in extra):
                raise ConfigError(f"{prefix}.extra_benchmarks", extra, "expected a list of benchmark names")
            from evaluators.benchmarks import BENCHMARKS

            bad = [b for b in extra if b not in BENCHMARKS]
            if bad:
                raise ConfigError(f"{prefix}.extra_benchmarks", bad[0], f"expected benchmarks from {', '.join(sorted(BENCHMARKS))}")
            d = {**d, "extra_benchmarks": tuple(extra)}
        return cls(**d)


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` group. Either ``path`` (one source) or ``mixture`` (several, with ratios)."""

    name: str = "custom"
    path: str | None = None
    format: str = "prompt_completion"
    split: str = "train"
    subset: str | None = None
    families: tuple[str, ...] | None = None
    mixture: tuple[SourceConfig, ...] = ()
    mixture_size: int | None = None  # total records drawn from the mixture (None: as many as the ratios allow)
    validation: SourceConfig | None = None  # a separate validation source ...
    validation_fraction: float = 0.05  # ... or this share of the cleaned data, held out (seeded)
    max_records: int | None = None  # per source, first N (for quick runs)
    template: str = "none"
    system: str | None = None  # system prompt for chat templates
    cutoff_len: int = 1024
    overlong: str = "truncate"  # truncate (policy in docs/data.md) or drop
    train_on_prompt: bool = False
    train_on: str = "all"  # multi-turn: supervise all assistant turns or only the last
    packing: bool = False
    pack_length: int | None = None  # packed row length (None: the whole batch in one row; see docs/data.md)
    on_error: str = "raise"  # malformed records: raise (naming file and line) or skip and count
    hygiene: HygieneConfig = field(default_factory=HygieneConfig)
    cache: bool = True

    @property
    def sources(self) -> tuple[SourceConfig, ...]:
        if self.mixture:
            return self.mixture
        return (SourceConfig(path=self.path, format=self.format, split=self.split, subset=self.subset,
                             families=self.families, name=self.name if self.path == "toy" else None),)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> DataConfig:
        d = dict(d or {})
        _check_keys(cls, d, "data")
        if "format" in d:
            _choice("data.format", d["format"], FORMATS)
        _choice("data.template", d.get("template", "none"), TEMPLATES)
        _choice("data.on_error", d.get("on_error", "raise"), ON_ERROR)
        _choice("data.overlong", d.get("overlong", "truncate"), OVERLONG)
        _choice("data.train_on", d.get("train_on", "all"), TRAIN_ON)
        for key in ("train_on_prompt", "packing", "cache"):
            if key in d:
                _bool(f"data.{key}", d[key])
        _number("data.cutoff_len", d.get("cutoff_len", 1024), lo=8, integer=True)
        for key in ("mixture_size", "max_records", "pack_length"):
            _number(f"data.{key}", d.get(key), lo=1, integer=True, optional=True)
        _number("data.validation_fraction", d.get("validation_fraction", 0.05), lo=0.0, hi=0.5)
        if d.get("system") is not None and not isinstance(d["system"], str):
            raise ConfigError("data.system", d["system"], "expected a string or null")

        mixture = d.get("mixture") or ()
        if not isinstance(mixture, (list, tuple)):
            raise ConfigError("data.mixture", mixture, "expected a list of sources {path, format, ratio, ...}")
        d["mixture"] = tuple(
            SourceConfig.from_dict(m if isinstance(m, Mapping) else {"path": m}, f"data.mixture[{i}]")
            for i, m in enumerate(mixture)
        )
        if not d["mixture"]:
            # One source: reuse SourceConfig's checks, reported under the top-level keys.
            single = {k: d[k] for k in ("path", "format", "split", "subset", "families") if d.get(k) is not None}
            src = SourceConfig.from_dict(single, "data")
            d["families"] = src.families
        elif d.get("path") is not None:
            raise ConfigError("data.path", d["path"], "expected null when data.mixture is given (list every source in the mixture)")
        if d.get("validation") is not None:
            v = d["validation"]
            d["validation"] = SourceConfig.from_dict(v if isinstance(v, Mapping) else {"path": v}, "data.validation")
        if isinstance(d.get("hygiene"), HygieneConfig):
            pass
        elif d.get("hygiene") is not None:
            if not isinstance(d["hygiene"], Mapping):
                raise ConfigError("data.hygiene", d["hygiene"], "expected a mapping of hygiene settings")
            d["hygiene"] = HygieneConfig.from_dict(d["hygiene"])
        else:
            d.pop("hygiene", None)
        return cls(**d)
