"""Hygiene: rules, exact dedup, near-dedup, decontamination, in that order.

``clean(examples, ...)`` returns the kept examples and a report: for every drop
reason the count and a few examples (with what each duplicated or which benchmark
task it contained), plus the settings that decided it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from harness.data import rules
from harness.data.config import HygieneConfig
from harness.data.formats import Example
from harness.data.textnorm import code_views, shingle_hashes

__all__ = ["clean", "approx_token_counts", "REASONS"]

REASONS = (
    "empty_output", "too_short", "too_long", "syntax_error", "pii_email", "pii_ipv4", "pii_api_key",
    "exact_duplicate", "near_duplicate", "contaminated",
)

View = tuple[list[str], list[str]]  # (abstract, literal) token streams of one record


def approx_token_counts(texts: Sequence[str]) -> list[int]:
    """Words + punctuation marks: a stand-in for token counts when no tokenizer is given."""
    import re

    pat = re.compile(r"\w+|[^\w\s]")
    return [len(pat.findall(t)) for t in texts]


def _snippet(ex: Example, limit: int = 160) -> str:
    text = " | ".join(m["content"] for m in ex.messages)
    return text if len(text) <= limit else text[:limit] + "..."


def _record_views(ex: Example) -> View:
    """(abstract, literal) token streams of the whole conversation."""
    abstract: list[str] = []
    literal: list[str] = []
    for m in ex.messages:
        a, b = code_views(m["content"])
        abstract += a
        literal += b
    return abstract, literal


@dataclass
class _Drops:
    """What hygiene dropped: a count per reason and the first few examples of each, with why."""

    examples_per_reason: int
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, reason: str, ex: Example, **detail: Any) -> None:
        self.counts[reason] += 1
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < self.examples_per_reason:
            bucket.append({"ref": ex.ref, "source": ex.source, "text": _snippet(ex), **detail})


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    t = time.perf_counter()
    yield
    timings[stage] = time.perf_counter() - t


def clean(
    examples: list[Example],
    cfg: HygieneConfig,
    *,
    benchmarks: Sequence[str] = (),
    count_tokens: Callable[[list[str]], list[int]] | None = None,
) -> tuple[list[Example], dict]:
    """Apply every enabled check; returns (kept examples, report)."""
    if not cfg.enabled:
        return examples, {"enabled": False, "input": len(examples), "kept": len(examples), "dropped": {}}
    started = time.perf_counter()
    drops = _Drops(cfg.examples_per_reason)
    timings: dict[str, float] = {}
    all_benchmarks = list(dict.fromkeys([*benchmarks, *cfg.extra_benchmarks]))  # the trial's, then the always-checked
    decontaminates = cfg.decontaminate and bool(all_benchmarks)

    with _timed(timings, "rules"):
        kept = _apply_rules(examples, cfg=cfg, count_tokens=count_tokens or approx_token_counts, drops=drops)
    if cfg.exact_dedup:
        with _timed(timings, "exact_dedup"):
            kept = _drop_exact_duplicates(kept, drops=drops)
    with _timed(timings, "normalise"):
        views = [_record_views(ex) for ex in kept] if (cfg.near_dedup or decontaminates) else []
    if cfg.near_dedup:
        with _timed(timings, "near_dedup"):
            kept, views = _drop_near_duplicates(kept, views=views, cfg=cfg, drops=drops)
    decontam_summary = None
    if decontaminates:
        with _timed(timings, "decontaminate"):
            kept, decontam_summary = _decontaminate(kept, views=views, cfg=cfg, benchmarks=all_benchmarks, drops=drops)

    report = {
        "enabled": True,
        "input": len(examples),
        "kept": len(kept),
        "dropped": {r: drops.counts[r] for r in REASONS if drops.counts[r]},
        "examples": drops.examples,
        "settings": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "token_counter": "tokenizer" if count_tokens else "approx_words",
        "decontamination": decontam_summary,
        "seconds": {k: round(v, 3) for k, v in {**timings, "total": time.perf_counter() - started}.items()},
    }
    return kept, report


def _apply_rules(examples: list[Example], *, cfg: HygieneConfig, count_tokens: Callable[[list[str]], list[int]],
                 drops: _Drops) -> list[Example]:
    """1. Per-record rules: empty answer, too short or long, code that does not parse, PII."""
    lengths = count_tokens(["\n".join(m["content"] for m in ex.messages) for ex in examples])
    kept: list[Example] = []
    for ex, n in zip(examples, lengths, strict=True):
        reason = (
            rules.empty_output(ex)
            or ("too_short" if n < cfg.min_tokens else None)
            or ("too_long" if cfg.max_tokens is not None and n > cfg.max_tokens else None)
            or rules.syntax_error(ex, cfg.parse_code)
            or (rules.pii(ex) if cfg.pii else None)
        )
        if reason:
            drops.add(reason, ex, tokens=n)
        else:
            kept.append(ex)
    return kept


def _drop_exact_duplicates(examples: list[Example], *, drops: _Drops) -> list[Example]:
    """2. Exact duplicates of an earlier record's messages (the first is kept)."""
    from harness.data.dedup import exact_key

    first: dict[bytes, str] = {}
    kept: list[Example] = []
    for ex in examples:
        key = exact_key(ex.messages)
        if key in first:
            drops.add("exact_duplicate", ex, duplicate_of=first[key])
        else:
            first[key] = ex.ref
            kept.append(ex)
    return kept


def _drop_near_duplicates(examples: list[Example], *, views: list[View], cfg: HygieneConfig,
                          drops: _Drops) -> tuple[list[Example], list[View]]:
    """3. Near duplicates: MinHash LSH over shingles of the normalised (abstract) token stream."""
    from harness.data.dedup import NearDedup

    near = NearDedup(threshold=cfg.near_dedup_threshold, num_perm=cfg.num_perm)
    kept: list[Example] = []
    kept_views: list[View] = []
    for i, (ex, view) in enumerate(zip(examples, views, strict=True)):
        hit = near.seen(str(i), shingle_hashes(view[0], cfg.shingle_size))
        if hit is not None:
            drops.add("near_duplicate", ex, duplicate_of=examples[int(hit[0])].ref, similarity=round(hit[1], 3))
        else:
            kept.append(ex)
            kept_views.append(view)
    return kept, kept_views


def _decontaminate(examples: list[Example], *, views: list[View], cfg: HygieneConfig, benchmarks: list[str],
                   drops: _Drops) -> tuple[list[Example], dict[str, Any]]:
    """4. Records that contain an evaluation problem of any of ``benchmarks``; returns the kept
    records and the summary for the report (the index's settings, the drops per benchmark)."""
    from harness.data.decontam import Decontaminator, benchmark_parts

    index = Decontaminator(benchmark_parts(benchmarks), n=cfg.decontam_ngram,
                           threshold=cfg.decontam_threshold, min_ngrams=cfg.decontam_min_ngrams,
                           renamed_threshold=cfg.decontam_renamed_threshold,
                           renamed_min_ngrams=cfg.decontam_renamed_min_ngrams)
    kept: list[Example] = []
    per_benchmark: Counter = Counter()
    for ex, view in zip(examples, views, strict=True):
        hit = index.match(*view)
        if hit is not None:
            part, coverage, how = hit
            per_benchmark[part.benchmark] += 1
            drops.add("contaminated", ex, benchmark=part.benchmark, task_id=part.task_id, part=part.kind,
                      coverage=round(coverage, 3), view=how)
        else:
            kept.append(ex)
    summary = {**index.summary(), "benchmarks": list(benchmarks), "dropped_per_benchmark": dict(per_benchmark)}
    return kept, summary
