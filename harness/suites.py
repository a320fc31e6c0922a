"""Suites in a trial (or ``harness.evaluate``): the base's scores once, the model's, and forgetting.

    base = base_scores(cfg, model=..., tokenizer=..., model_hash=...)   # before any adapter: cached
    metrics = evaluate_suites(cfg, model=..., tokenizer=..., record=..., base=base)

Forgetting is how much worse than the base, in each metric's own direction (base - trial for
accuracy, trial - base for bits per byte), with a 95% interval paired over documents: a paired
interval over per-document scores for means, a bootstrap over documents for ratios of sums.
The base is scored once per (model hash, suite hash) and cached under ``<cache_dir>/suites/``;
workers of one study take a file lock, so only one of them computes it.
"""

from __future__ import annotations

import fcntl
import math
import re
from typing import Any

from common.files import write_json_atomic, write_jsonl_atomic
from harness.config import TrialConfig
from harness.record import TrialRecord, read_json

__all__ = ["base_scores", "evaluate_suites", "forgetting"]


def _suites(cfg: TrialConfig) -> list[tuple[str, int | None, str | None]]:
    return [(s.name, s.limit, s.metric) for s in cfg.eval.suites]


def _doc_record(result) -> dict[str, Any]:
    """What the cache and the comparison need of a suite result: the aggregate and per-document values."""
    return {"metric": result.metric, "value": result.value, "higher_is_better": result.higher_is_better,
            "metrics": result.metrics, "docs": [{k: d[k] for k in ("doc_id", "doc_hash", "score", result.metric) if k in d}
                                                for d in result.docs]}


def base_scores(cfg: TrialConfig, *, model, tokenizer, model_hash: str) -> dict[str, dict[str, Any]]:
    """Each configured suite's scores of the base model (``model`` before any adapter), from the cache
    when another trial or worker already computed them."""
    from evaluators.suites import run_suites, suite_hash

    if not cfg.eval.suites:
        return {}
    folder = cfg.cache_dir / "suites"
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_hash)[:120]
    paths = {name: folder / f"{safe}-{name}-{suite_hash(name, limit)}.json" for name, limit, _ in _suites(cfg)}
    with open(folder / f"{safe}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker computes; the others wait, then read its file
        missing = [s for s in _suites(cfg) if not read_json(paths[s[0]])]
        if missing:
            for name, result in run_suites(model, tokenizer, missing).items():
                write_json_atomic(paths[name], {"model_hash": model_hash, "suite": name, **_doc_record(result)})
    return {name: {**read_json(path), "cache": str(path)} for name, path in paths.items()}


def forgetting(base: dict[str, Any], trial: dict[str, Any]) -> dict[str, Any]:
    """How much worse than the base the trial is on one suite, paired over documents, with a 95% interval."""
    from reports.stats import bootstrap_ratio_difference, compare_paired

    bdocs = {d["doc_id"]: d for d in base["docs"]}
    tdocs = {d["doc_id"]: d for d in trial["docs"]}
    if set(bdocs) != set(tdocs) or any(bdocs[i].get("doc_hash") != tdocs[i].get("doc_hash") for i in bdocs):
        raise ValueError("the base and the trial were scored on different documents")
    ids = sorted(bdocs)
    metric = trial["metric"]
    if isinstance(tdocs[ids[0]].get(metric), (list, tuple)):  # (log-likelihood, bytes): a ratio of sums, bootstrapped
        scale = 1 / math.log(2) if metric == "bits_per_byte" else 1.0
        est, lo, hi = bootstrap_ratio_difference([(-bdocs[i][metric][0] * scale, bdocs[i][metric][1]) for i in ids],
                                                 [(-tdocs[i][metric][0] * scale, tdocs[i][metric][1]) for i in ids])
        sign = -1.0 if trial["higher_is_better"] else 1.0
        lo, hi = sorted((sign * lo, sign * hi))
        return {"estimate": sign * est, "interval": [lo, hi], "method": "bootstrap over documents (2000 resamples)",
                "n_docs": len(ids)}
    c = compare_paired({str(i): [bdocs[i]["score"]] for i in ids}, {str(i): [tdocs[i]["score"]] for i in ids},
                       alpha=0.025, higher_is_better=trial["higher_is_better"])
    return {"estimate": c.drop, "interval": [c.lower, c.upper], "method": c.method, "n_docs": len(ids),
            "worse": len(c.worse), "better": len(c.better)}


def evaluate_suites(cfg: TrialConfig, *, model, tokenizer, record: TrialRecord, base: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Score ``model`` on every configured suite, write ``eval/<suite>/`` in the gate's layout, and return
    ``<suite>/<metric>``, ``forgetting/<suite>`` and its interval for metrics.json."""
    from evaluators.suites import run_suites, suite_hash

    if not cfg.eval.suites:
        return {}
    with record.phase("suites"):
        results = run_suites(model, tokenizer, _suites(cfg))
    out: dict[str, Any] = {}
    with record.phase("record"):
        for (name, limit, _), result in zip(_suites(cfg), results.values()):
            mine = _doc_record(result)
            forgot = forgetting(base[name], mine) if name in base else None
            folder = record.dir / "eval" / name
            rows = [{"task_id": str(d["doc_id"]), "sample": 0, "score": d["score"], "doc_hash": d["doc_hash"]} for d in result.docs]
            write_jsonl_atomic(folder / "results.jsonl", rows)
            write_jsonl_atomic(folder / "samples.jsonl", (_lean(d) for d in result.docs))
            write_json_atomic(folder / "metrics.json", {
                "suite": name, "task": result.task, "metric": result.metric, result.metric: result.value,
                "metrics": result.metrics, "higher_is_better": result.higher_is_better, "n_docs": len(result.docs),
                "benchmark_meta": {"suite_hash": suite_hash(name, limit), "limit": limit, "kind": "lm-eval suite"},
                "per_document_score": "bits per byte of the document" if result.metric == "bits_per_byte" else result.metric,
                "base": {"value": base[name]["value"], "model_hash": base[name].get("model_hash"), "cache": base[name].get("cache")}
                if name in base else None,
                "forgetting": forgot,
            })
            out[f"{name}/{result.metric}"] = result.value
            if forgot is not None:
                out[f"forgetting/{name}"] = forgot["estimate"]
                out[f"forgetting/{name} 95% CI"] = forgot["interval"]
    return out


def _lean(doc: dict[str, Any]) -> dict[str, Any]:
    """lm-eval's per-document outputs, without a rolling document's full text (it is in the suite's data file)."""
    return {k: v for k, v in doc.items() if not (k == "target" and isinstance(v, str) and len(v) > 200)}
