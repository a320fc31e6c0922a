"""The data stage of a trial: load -> clean -> mix -> hold out -> template -> tokenize -> report.

``prepare_data`` is what ``harness.trial`` calls; its result is cached under
``cache_dir`` by a content hash of everything that decides it (source contents, config,
tokenizer, benchmarks, seed, code version), so repeated trials do not recompute.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.data import cache
from harness.data.config import DataConfig
from harness.data.encode import Encoder
from harness.data.formats import Example, load_source
from harness.data.hygiene import clean
from harness.data.templates import render
from harness.errors import DataError

__all__ = ["PreparedData", "prepare_data", "clean_sources", "tokenizer_fingerprint", "CODE_VERSION"]

CODE_VERSION = "data-1"  # bump when a change here changes prepared data


@dataclass
class PreparedData:
    train: list[dict]  # {"input_ids": [...], "labels": [...]}
    validation: list[dict]
    report: dict
    data_hash: str
    template: str


def tokenizer_fingerprint(tokenizer) -> str:
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    extra = [type(tokenizer).__name__, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id,
             getattr(tokenizer, "chat_template", None)]
    h.update(json.dumps(extra, default=str).encode())
    return h.hexdigest()


def _load_all(cfg: DataConfig) -> tuple[list, list, dict, dict]:
    """Examples per source, validation examples, skipped counts, source fingerprints."""
    per_source, skipped, fingerprints = [], {}, {}
    for src in cfg.sources:
        res = load_source(src, on_error=cfg.on_error, limit=cfg.max_records)
        per_source.append((src, res.examples))
        fingerprints[src.label] = res.fingerprint
        if res.skipped:
            skipped[src.label] = {"counts": dict(res.skipped), "examples": {k: v[:3] for k, v in res.skipped_examples.items()}}
    validation = []
    if cfg.validation is not None:
        res = load_source(cfg.validation, on_error=cfg.on_error, limit=cfg.max_records)
        validation = res.examples
        fingerprints[f"validation:{cfg.validation.label}"] = res.fingerprint
        if res.skipped:
            skipped[f"validation:{cfg.validation.label}"] = {"counts": dict(res.skipped)}
    return per_source, validation, skipped, fingerprints


def _mix(per_source: list[tuple], cfg: DataConfig, rng: random.Random) -> tuple[list[Example], dict]:
    """Draw from each source in proportion to its ratio, without repetition; seeded."""
    if len(per_source) == 1:
        src, exs = per_source[0]
        return list(exs), {src.label: {"ratio": 1.0, "available": len(exs), "drawn": len(exs)}}
    total_ratio = sum(src.ratio for src, _ in per_source)
    shares = {src.label: src.ratio / total_ratio for src, _ in per_source}
    # The largest total every source can serve at its share without repeating records.
    most = min(len(exs) / shares[src.label] for src, exs in per_source)
    size = min(cfg.mixture_size, int(most)) if cfg.mixture_size else int(most)
    mixed, mixture = [], {}
    for src, exs in per_source:
        k = round(size * shares[src.label])
        k = min(k, len(exs))
        mixed += rng.sample(exs, k)
        mixture[src.label] = {"ratio": round(shares[src.label], 4), "available": len(exs), "drawn": k}
    rng.shuffle(mixed)
    return mixed, mixture


def _histogram(lengths: list[int], bins: int = 10) -> dict:
    if not lengths:
        return {"edges": [], "counts": []}
    lo, hi = min(lengths), max(lengths)
    width = max(1, -(-(hi - lo + 1) // bins))
    counts = Counter((n - lo) // width for n in lengths)
    return {
        "edges": [lo + i * width for i in range(bins + 1)],
        "counts": [counts.get(i, 0) for i in range(bins)],
        "min": lo, "max": hi, "mean": round(sum(lengths) / len(lengths), 1),
    }


def clean_sources(cfg: DataConfig, *, eval_benchmarks=(), count_tokens=None, seed: int = 0) -> tuple[list, list, dict]:
    """Load, clean and mix; returns (train examples, validation examples, report). No tokenizer needed."""
    per_source, validation, skipped, fingerprints = _load_all(cfg)
    if not any(exs for _, exs in per_source):
        raise DataError(f"data '{cfg.name}': no records could be read from {[s.label for s in cfg.sources]}")
    # Clean everything in one pass, train sources first, so a validation copy of a train record is the one dropped.
    everything = [ex for _, exs in per_source for ex in exs] + validation
    n_train_in = len(everything) - len(validation)
    for i, ex in enumerate(everything):
        ex.meta["split"] = "train" if i < n_train_in else "validation"
    kept, hygiene = clean(everything, cfg.hygiene, benchmarks=eval_benchmarks, count_tokens=count_tokens)
    kept_ids = {id(ex) for ex in kept}
    per_source = [(src, [ex for ex in exs if id(ex) in kept_ids]) for src, exs in per_source]
    validation = [ex for ex in validation if id(ex) in kept_ids]
    hygiene["kept_per_source"] = {src.label: len(exs) for src, exs in per_source}
    for src, exs in per_source:
        if not exs:
            raise DataError(
                f"data source '{src.label}' is empty after filtering (dropped: {hygiene['dropped']}); "
                "relax data.hygiene or check the data"
            )
    rng = random.Random(seed)
    train, mixture = _mix(per_source, cfg, rng)
    if cfg.validation is None and cfg.validation_fraction > 0 and len(train) > 1:
        n_val = max(1, round(len(train) * cfg.validation_fraction))
        order = list(range(len(train)))
        rng.shuffle(order)
        held = set(order[:n_val])
        validation = [train[i] for i in sorted(held)]
        train = [ex for i, ex in enumerate(train) if i not in held]
    report = {
        "name": cfg.name,
        "sources": fingerprints,
        "skipped_on_read": skipped,
        "hygiene": hygiene,
        "mixture": mixture,
        "mixture_achieved": {k: round(v / len(train), 4) for k, v in Counter(ex.source for ex in train).items()} if train else {},
    }
    return train, validation, report


def _encode(examples: list[Example], cfg: DataConfig, encoder: Encoder, tokenizer) -> tuple[list[dict], Counter]:
    rendered = [render(ex.messages, cfg.template, tokenizer=tokenizer, system=cfg.system) for ex in examples]
    out: list[dict] = []
    counts: Counter[str] = Counter()
    for enc in encoder.encode_many(rendered):
        if enc.truncated:
            counts["truncated"] += 1
            if cfg.overlong == "drop":
                counts["dropped_overlong"] += 1
                continue
        if all(label == -100 for label in enc.labels):
            counts["dropped_no_supervised_tokens"] += 1
            continue
        out.append({"input_ids": enc.input_ids, "labels": enc.labels})
    return out, counts


def _data_hash(train: list[dict], validation: list[dict]) -> str:
    h = hashlib.sha256()
    for split, rows in (("train", train), ("validation", validation)):
        h.update(split.encode())
        for row in rows:
            h.update(json.dumps([row["input_ids"], row["labels"]]).encode())
    return h.hexdigest()


def prepare_data(cfg: DataConfig, *, tokenizer, eval_benchmarks=(), cache_dir: Path | None = None,
                 seed: int = 0) -> PreparedData:
    """Tokenized, masked, cleaned train/validation sets and the data report for one trial."""
    started = time.perf_counter()
    key_parts = {
        "code": CODE_VERSION,
        "config": cfg.to_dict(),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "benchmarks": sorted(eval_benchmarks),
        "seed": seed,
        "sources": cache.source_fingerprints(cfg),
    }
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True, default=str).encode()).hexdigest()[:32]
    if cfg.cache and cache_dir is not None:
        hit = cache.load(Path(cache_dir), key)
        if hit is not None:
            train, validation, report = hit
            report["cache"] = {"key": key, "hit": True}
            return PreparedData(train, validation, report, report["data_hash"], cfg.template)

    def count_tokens(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    train_ex, val_ex, report = clean_sources(cfg, eval_benchmarks=eval_benchmarks, count_tokens=count_tokens, seed=seed)
    encoder = Encoder(tokenizer, template=cfg.template, cutoff_len=cfg.cutoff_len,
                      train_on_prompt=cfg.train_on_prompt, train_on=cfg.train_on)
    train, train_counts = _encode(train_ex, cfg, encoder, tokenizer)
    validation, val_counts = _encode(val_ex, cfg, encoder, tokenizer)
    if not train:
        raise DataError(f"data '{cfg.name}': the training set is empty after filtering and truncation ({dict(train_counts)})")
    from harness.data.collate import padding_waste

    lengths = [len(r["input_ids"]) for r in train]
    report.update({
        "template": cfg.template,
        "cutoff_len": cfg.cutoff_len,
        "train_on_prompt": cfg.train_on_prompt,
        "train_on": cfg.train_on,
        "bos_added": encoder.bos is not None,
        "packing": cfg.packing,
        "counts": {"train": len(train), "validation": len(validation)},
        "encoding": {"train": dict(train_counts), "validation": dict(val_counts)},
        "token_lengths": _histogram(lengths),
        "supervised_tokens": sum(sum(1 for x in r["labels"] if x != -100) for r in train),
        "train_tokens": sum(lengths),
        "padding_if_unpacked": padding_waste(lengths, 8),
        "seed": seed,
    })
    report["data_hash"] = data_hash = _data_hash(train, validation)
    report["seconds"] = round(time.perf_counter() - started, 3)
    report["cache"] = {"key": key, "hit": False}
    if cfg.cache and cache_dir is not None:
        cache.save(Path(cache_dir), key, train, validation, report)
    return PreparedData(train, validation, report, data_hash, cfg.template)
