"""The typed ``data`` config: what to load, how to format it, how to clean it.

Built from the plain dict of the Hydra ``data`` group by :meth:`DataConfig.from_dict` (shorthands
expanded, then the generic :func:`harness.schema.from_dict`), which checks every key and fails with
:class:`~harness.errors.ConfigError` naming the key, the value and what was expected. Nothing
heavy is imported here.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from harness import schema
from harness.errors import ConfigError

__all__ = ["DataConfig", "HygieneConfig", "SourceConfig", "FORMATS", "TEMPLATES"]

Format = Literal["alpaca", "sharegpt", "prompt_completion"]
# "none": the prompt text is used raw (HumanEval-style code completion).
# "tokenizer": the tokenizer's own chat template (tokenizer.apply_chat_template).
Template = Literal["none", "alpaca", "chatml", "tokenizer"]
FORMATS: tuple[str, ...] = typing.get_args(Format)
TEMPLATES: tuple[str, ...] = typing.get_args(Template)


def _at_least(key: str, value: int | None, lo: int) -> None:
    if value is not None and value < lo:
        raise ConfigError(key, value, f"expected an integer >= {lo}")


def _share(key: str, value: float) -> None:
    """A similarity or share threshold: 0 < value <= 1."""
    if not 0 < value <= 1:
        raise ConfigError(key, value, "expected a value in (0, 1]")


@dataclass(frozen=True)
class SourceConfig:
    """One data source: a local ``.jsonl``/``.json`` file, a Hugging Face dataset name, or ``toy``."""

    path: str
    format: Format = "prompt_completion"
    split: str = "train"
    ratio: float = 1.0  # share of the mixture (normalised over all sources)
    name: str | None = None  # label in the report; defaults to the path
    families: tuple[str, ...] | None = None  # toy only: restrict to these families
    subset: str | None = None  # HF dataset configuration name

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise ConfigError("path", self.path, "expected a .jsonl/.json file, a Hugging Face dataset name, or 'toy'")
        if self.ratio <= 0:
            raise ConfigError("ratio", self.ratio, "expected a positive number")
        if self.families is not None:
            from evaluators.benchmarks.toy import FAMILIES

            known = {f.key for f in FAMILIES}
            bad = [f for f in self.families if f not in known]
            if bad:
                raise ConfigError("families", bad[0], f"expected toy families from {', '.join(sorted(known))}")

    @property
    def label(self) -> str:
        return self.name or (f"{self.path}:{self.split}" if self.path == "toy" else self.path)


@dataclass(frozen=True)
class HygieneConfig:
    """Rules, deduplication and decontamination (see docs/data.md for why these defaults)."""

    enabled: bool = True
    min_tokens: int = 1  # shorter records (prompt + answer, in tokens) are dropped
    max_tokens: int | None = None  # longer records are dropped (None: only cutoff_len truncation applies)
    parse_code: Literal["fenced", "whole", "off"] = "fenced"  # fenced: ```python blocks must parse; whole: prompt+answer must parse; off
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

    def __post_init__(self) -> None:
        for key in ("min_tokens", "examples_per_reason"):
            _at_least(key, getattr(self, key), 0)
        for key in ("max_tokens", "num_perm", "shingle_size", "decontam_ngram", "decontam_min_ngrams",
                    "decontam_renamed_min_ngrams"):
            _at_least(key, getattr(self, key), 1)
        for key in ("near_dedup_threshold", "decontam_threshold", "decontam_renamed_threshold"):
            _share(key, getattr(self, key))
        if self.extra_benchmarks:
            from evaluators.benchmarks import BENCHMARKS

            bad = [b for b in self.extra_benchmarks if b not in BENCHMARKS]
            if bad:
                raise ConfigError("extra_benchmarks", bad[0], f"expected benchmarks from {', '.join(sorted(BENCHMARKS))}")


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` group. Either ``path`` (one source) or ``mixture`` (several, with ratios)."""

    name: str = "custom"
    path: str | None = None
    format: Format = "prompt_completion"
    split: str = "train"
    subset: str | None = None
    families: tuple[str, ...] | None = None
    mixture: tuple[SourceConfig, ...] = ()
    mixture_size: int | None = None  # total records drawn from the mixture (None: as many as the ratios allow)
    validation: SourceConfig | None = None  # a separate validation source ...
    validation_fraction: float = 0.05  # ... or this share of the cleaned data, held out (seeded)
    max_records: int | None = None  # per source, first N (for quick runs)
    template: Template = "none"
    system: str | None = None  # system prompt for chat templates
    cutoff_len: int = 1024
    overlong: Literal["truncate", "drop"] = "truncate"  # truncate (policy in docs/data.md) or drop
    train_on_prompt: bool = False
    train_on: Literal["all", "last"] = "all"  # multi-turn: supervise all assistant turns or only the last
    packing: bool = False
    pack_length: int | None = None  # packed row length (None: the whole batch in one row; see docs/data.md)
    on_error: Literal["raise", "skip"] = "raise"  # malformed records: raise (naming file and line) or skip and count
    hygiene: HygieneConfig = field(default_factory=HygieneConfig)
    cache: bool = True

    def __post_init__(self) -> None:
        _at_least("cutoff_len", self.cutoff_len, 8)
        for key in ("mixture_size", "max_records", "pack_length"):
            _at_least(key, getattr(self, key), 1)
        if not 0 <= self.validation_fraction <= 0.5:
            raise ConfigError("validation_fraction", self.validation_fraction, "expected a value in [0, 0.5]")
        if self.mixture and self.path is not None:
            raise ConfigError("path", self.path, "expected null when data.mixture is given (list every source in the mixture)")
        if not self.mixture:
            self._single_source()  # SourceConfig's checks, reported under the top-level keys (data.path, ...)

    @property
    def sources(self) -> tuple[SourceConfig, ...]:
        return self.mixture or (self._single_source(),)

    def _single_source(self) -> SourceConfig:
        # a missing path is refused by SourceConfig's own check (reported as data.path)
        return SourceConfig(path=self.path, format=self.format, split=self.split, subset=self.subset,  # type: ignore[arg-type]
                            families=self.families, name=self.name if self.path == "toy" else None)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> DataConfig:
        """The ``data`` group (plain dict) -> DataConfig. Shorthands are expanded first: a mixture entry or
        ``validation`` given as a bare path, and null ``mixture``/``hygiene`` (their defaults)."""
        if d is None:
            d = {}
        if not isinstance(d, Mapping):
            raise ConfigError("data", d, "expected a mapping of data settings")
        d = {k: v for k, v in d.items() if not (k in ("mixture", "hygiene") and v is None)}
        if isinstance(d.get("mixture"), (list, tuple)):
            d["mixture"] = [{"path": m} if isinstance(m, str) else m for m in d["mixture"]]
        if isinstance(d.get("validation"), str):
            d["validation"] = {"path": d["validation"]}
        return schema.from_dict(cls, d, "data")
