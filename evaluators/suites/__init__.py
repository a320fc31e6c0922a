"""General-capability suites: lm-eval tasks run on an already-loaded model (adapter applied).

    run_suites(model, tokenizer, ["stdlib", "toy_base"]) -> {name: SuiteResult}

Local suites are lm-eval task YAMLs in ``tasks/`` with their data files next to them; they
are resolved from that folder only (no default task index, which takes seconds to build)
and their data is read here and handed to lm-eval as an in-memory dataset, so no local suite
touches the network or the ``datasets`` cache. Any other name is an lm-eval task name
(HellaSwag, ARC, ...), which needs the Hugging Face hub for its data.

The model object is handed to lm-eval's ``HFLM`` as it is: no second load. Every suite's
per-document outputs come back, so forgetting can be compared with the base per document.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
from typing import Any

from evaluators.suites._base import TASKS_DIR, LocalSuite, SuiteResult

__all__ = ["LOCAL_SUITES", "TASKS_DIR", "LocalSuite", "SuiteResult", "is_local", "run_suites", "suite_hash"]

# The registry of local suites. A new one is a task YAML and its data in tasks/, plus one entry here;
# the contract test (tests/evaluators/test_suites_contract.py) runs every entry.
LOCAL_SUITES: dict[str, LocalSuite] = {
    s.name: s
    for s in (
        LocalSuite("stdlib", "stdlib.yaml", "bits_per_byte", higher_is_better=False,
                   summary="code perplexity over a vendored sample of the Python standard library"),
        LocalSuite("toy_base", "toy_base.yaml", "acc", higher_is_better=True,
                   summary="multiple choice over the toy families the tiny base was pre-trained on"),
    )
}  # fmt: skip

# For hub tasks without a configured metric: the first of these the task reports.
_PREFERRED = ("acc_norm", "acc", "exact_match", "bits_per_byte", "word_perplexity")


def is_local(name: str) -> bool:
    return name in LOCAL_SUITES


def _local_config(name: str, limit: int | None) -> dict[str, Any]:
    """The suite's YAML as an lm-eval task config, with its data loaded here (no download)."""
    suite = LOCAL_SUITES[name]
    config = suite.config()
    rows = suite.documents(limit)
    config.pop("dataset_kwargs")
    config.pop("dataset_path")

    def dataset(**_: Any) -> dict[str, Any]:
        from datasets import Dataset

        return {"test": Dataset.from_list(rows)}

    config["custom_dataset"] = dataset
    return config


def suite_hash(name: str, limit: int | None) -> str:
    """What a suite's scores depend on besides the model: its task file, data, limit and lm-eval's version."""
    from importlib.metadata import version

    h = hashlib.sha256(f"{name}|{limit}|lm-eval {version('lm-eval')}".encode())
    if is_local(name):
        suite = LOCAL_SUITES[name]
        h.update(suite.yaml_path.read_bytes())
        h.update(suite.data_path().read_bytes())
    return h.hexdigest()[:16]


def _task_manager(names: list[str]):
    from lm_eval.tasks import TaskManager

    if all(is_local(n) for n in names):
        return TaskManager(include_path=str(TASKS_DIR), include_defaults=False)  # milliseconds: our folder only
    return TaskManager(include_path=str(TASKS_DIR))  # hub names need lm-eval's own index (seconds to build)


def _score(metric: str, value: Any) -> float:
    """One document's score in the metric's own units: bits per byte for a (log-likelihood, bytes) pair."""
    if isinstance(value, (list, tuple)):
        loglik, units = value
        if metric == "bits_per_byte":
            return -float(loglik) / max(1, units) / math.log(2)
        return math.exp(-float(loglik) / max(1, units))
    return float(value)


def run_suites(model, tokenizer, suites: list[tuple[str, int | None, str | None]], *, batch_size: int = 16,
               max_length: int | None = None) -> dict[str, SuiteResult]:
    """Run (name, limit, metric) suites on ``model`` through lm-eval; the model's train/eval mode and
    torch's thread count are restored afterwards."""
    import lm_eval.evaluator
    import torch
    from lm_eval.models.huggingface import HFLM

    names = [s[0] for s in suites]
    manager = _task_manager(names)
    configs = [_local_config(n, limit) if is_local(n) else n for n, limit, _ in suites]
    was_training, threads = model.training, torch.get_num_threads()
    quiet = logging.getLogger("lm_eval")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its notes on a model object and on task metadata are not for our users
    torch.set_num_threads(1)  # a tiny forward gains nothing from 2 threads and contends with them (docs/suites.md)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # lm-eval's progress bars and its notes on the model object
            lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length)
            tasks = manager.load(configs)
            limits = {n: limit for n, limit, _ in suites if not is_local(n)}
            out = lm_eval.evaluator.evaluate(lm=lm, task_dict=tasks, log_samples=True, bootstrap_iters=0,
                                             limit=max(v for v in limits.values() if v is not None) if limits and all(limits.values()) else None)
    finally:
        quiet.setLevel(level)
        torch.set_num_threads(threads)
        model.train(was_training)  # HFLM puts the model in eval mode and leaves it there
    results = {}
    for (name, _, metric), task in zip(suites, _task_names(names)):
        res = out["results"][task]
        aggregates = {k.split(",")[0]: float(v) for k, v in res.items()
                      if "," in k and "_stderr," not in k and isinstance(v, (int, float))}
        if is_local(name):
            metric, better = LOCAL_SUITES[name].metric, LOCAL_SUITES[name].higher_is_better
        else:
            metric = metric or next((m for m in _PREFERRED if m in aggregates), sorted(aggregates)[0])
            better = bool(out["higher_is_better"][task].get(metric, True))
        docs = []
        for s in out["samples"][task]:
            value = s.get(metric)
            docs.append({"doc_id": s["doc_id"], "doc_hash": s.get("doc_hash"), "score": _score(metric, value),
                         metric: list(value) if isinstance(value, tuple) else value,
                         "filtered_resps": _plain(s.get("filtered_resps")), "target": _plain(s.get("target"))})
        results[name] = SuiteResult(name=name, task=task, metric=metric, value=aggregates[metric], higher_is_better=better,
                                    metrics=aggregates, docs=docs)
    return results


def _task_names(names: list[str]) -> list[str]:
    """lm-eval's task name for each suite, in order (a local suite's task is harness_<name>)."""
    return [f"harness_{n}" if is_local(n) else n for n in names]


def _plain(value: Any) -> Any:
    """JSON-safe copy of lm-eval's per-document outputs (tuples as lists, numbers as floats)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
