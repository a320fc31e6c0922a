"""Hygiene: rules, exact dedup, near-dedup, decontamination, in that order.

``clean(examples, ...)`` returns the kept examples and a report: for every drop
reason the count and a few examples (with what each duplicated or which benchmark
task it contained), plus the settings that decided it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence

from harness.data import rules
from harness.data.config import HygieneConfig
from harness.data.formats import Example
from harness.data.textnorm import code_views, shingle_hashes

__all__ = ["clean", "approx_token_counts", "REASONS"]

REASONS = (
    "empty_output", "too_short", "too_long", "syntax_error", "pii_email", "pii_ipv4", "pii_api_key",
    "exact_duplicate", "near_duplicate", "contaminated",
)


def approx_token_counts(texts: Sequence[str]) -> list[int]:
    """Words + punctuation marks: a stand-in for token counts when no tokenizer is given."""
    import re

    pat = re.compile(r"\w+|[^\w\s]")
    return [len(pat.findall(t)) for t in texts]


def _snippet(ex: Example, limit: int = 160) -> str:
    text = " | ".join(m["content"] for m in ex.messages)
    return text if len(text) <= limit else text[:limit] + "..."


def _record_views(ex: Example) -> tuple[list[str], list[str]]:
    """(abstract, literal) token streams of the whole conversation."""
    abstract: list[str] = []
    literal: list[str] = []
    for m in ex.messages:
        a, b = code_views(m["content"])
        abstract += a
        literal += b
    return abstract, literal


def clean(
    examples: list[Example],
    cfg: HygieneConfig,
    *,
    benchmarks: Sequence[str] = (),
    count_tokens: Callable[[list[str]], list[int]] | None = None,
) -> tuple[list[Example], dict]:
    """Apply every enabled check; returns (kept examples, report)."""
    from harness.data.decontam import Decontaminator, benchmark_parts
    from harness.data.dedup import NearDedup, exact_key

    started = time.perf_counter()
    dropped: Counter = Counter()
    samples: dict[str, list] = {}
    timings: dict[str, float] = {}

    def drop(reason: str, ex: Example, **detail) -> None:
        dropped[reason] += 1
        bucket = samples.setdefault(reason, [])
        if len(bucket) < cfg.examples_per_reason:
            bucket.append({"ref": ex.ref, "source": ex.source, "text": _snippet(ex), **detail})

    if not cfg.enabled:
        return examples, {"enabled": False, "input": len(examples), "kept": len(examples), "dropped": {}}

    # 1. Per-record rules.
    t = time.perf_counter()
    count = count_tokens or approx_token_counts
    lengths = count(["\n".join(m["content"] for m in ex.messages) for ex in examples])
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
            drop(reason, ex, tokens=n)
        else:
            kept.append(ex)
    timings["rules"] = time.perf_counter() - t

    # 2. Exact duplicates.
    if cfg.exact_dedup:
        t = time.perf_counter()
        first: dict[bytes, str] = {}
        survivors = []
        for ex in kept:
            key = exact_key(ex.messages)
            if key in first:
                drop("exact_duplicate", ex, duplicate_of=first[key])
            else:
                first[key] = ex.ref
                survivors.append(ex)
        kept = survivors
        timings["exact_dedup"] = time.perf_counter() - t

    checks_benchmarks = cfg.decontaminate and (benchmarks or cfg.extra_benchmarks)
    t = time.perf_counter()
    views = [_record_views(ex) for ex in kept] if (cfg.near_dedup or checks_benchmarks) else None
    timings["normalise"] = time.perf_counter() - t

    # 3. Near duplicates (MinHash LSH over normalised shingles).
    if cfg.near_dedup:
        t = time.perf_counter()
        near = NearDedup(threshold=cfg.near_dedup_threshold, num_perm=cfg.num_perm)
        survivors, survivor_views = [], []
        for i, (ex, view) in enumerate(zip(kept, views, strict=True)):
            hit = near.seen(str(i), shingle_hashes(view[0], cfg.shingle_size))
            if hit is not None:
                drop("near_duplicate", ex, duplicate_of=kept[int(hit[0])].ref, similarity=round(hit[1], 3))
            else:
                survivors.append(ex)
                survivor_views.append(view)
        kept, views = survivors, survivor_views
        timings["near_dedup"] = time.perf_counter() - t

    # 4. Decontamination against every evaluation benchmark.
    decontam_summary = None
    benchmarks = list(dict.fromkeys([*benchmarks, *cfg.extra_benchmarks]))
    if cfg.decontaminate and benchmarks:
        t = time.perf_counter()
        index = Decontaminator(benchmark_parts(benchmarks), n=cfg.decontam_ngram,
                               threshold=cfg.decontam_threshold, min_ngrams=cfg.decontam_min_ngrams,
                               renamed_threshold=cfg.decontam_renamed_threshold,
                               renamed_min_ngrams=cfg.decontam_renamed_min_ngrams)
        survivors = []
        per_benchmark: Counter = Counter()
        for ex, view in zip(kept, views, strict=True):
            hit = index.match(*view)
            if hit is not None:
                part, coverage, how = hit
                per_benchmark[part.benchmark] += 1
                drop("contaminated", ex, benchmark=part.benchmark, task_id=part.task_id, part=part.kind,
                     coverage=round(coverage, 3), view=how)
            else:
                survivors.append(ex)
        kept = survivors
        decontam_summary = {**index.summary(), "benchmarks": list(benchmarks), "dropped_per_benchmark": dict(per_benchmark)}
        timings["decontaminate"] = time.perf_counter() - t

    report = {
        "enabled": True,
        "input": len(examples),
        "kept": len(kept),
        "dropped": {r: dropped[r] for r in REASONS if dropped[r]},
        "examples": samples,
        "settings": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "token_counter": "tokenizer" if count_tokens else "approx_words",
        "decontamination": decontam_summary,
        "seconds": {k: round(v, 3) for k, v in {**timings, "total": time.perf_counter() - started}.items()},
    }
    return kept, report
