"""Suites and forgetting: lm-eval on the loaded model, offline; the base scored once; forgetting paired by document."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from evaluators.suites import toy_base
from harness.suites import base_scores, forgetting
from tests.conftest import REPO


def _docs(scores, metric="acc", pairs=None):
    return [{"doc_id": i, "doc_hash": f"h{i}", "score": s, **({metric: pairs[i]} if pairs else {metric: s})}
            for i, s in enumerate(scores)]


def test_forgetting_is_base_minus_trial_for_accuracy():
    base = {"metric": "acc", "higher_is_better": True, "docs": _docs([1.0] * 60 + [0.0] * 40)}
    trial = {"metric": "acc", "higher_is_better": True, "docs": _docs([1.0] * 40 + [0.0] * 60)}
    f = forgetting(base, trial)
    assert f["estimate"] == pytest.approx(0.2) and 0 < f["interval"][0] < 0.2 < f["interval"][1]
    same = forgetting(base, base)
    assert same["estimate"] == 0 and same["interval"][0] <= 0 <= same["interval"][1]


def test_forgetting_is_trial_minus_base_for_bits_per_byte_a_ratio_of_sums():
    # per document (log-likelihood in nats, bytes); the trial needs 10% more nats on every document
    pairs_base = [(-1000.0 * (1 + i % 3), 500 * (1 + i % 3)) for i in range(40)]
    pairs_trial = [(ll * 1.1, n) for ll, n in pairs_base]
    base = {"metric": "bits_per_byte", "higher_is_better": False, "docs": _docs([0] * 40, "bits_per_byte", pairs_base)}
    trial = {"metric": "bits_per_byte", "higher_is_better": False, "docs": _docs([0] * 40, "bits_per_byte", pairs_trial)}
    f = forgetting(base, trial)
    expected = 0.1 * 2 / 0.6931471805599453  # base is 2 nats per byte
    assert f["estimate"] == pytest.approx(expected) and f["interval"][0] <= expected <= f["interval"][1]
    assert "bootstrap" in f["method"]


def test_forgetting_refuses_different_documents():
    base = {"metric": "acc", "higher_is_better": True, "docs": _docs([1.0, 0.0])}
    trial = {"metric": "acc", "higher_is_better": True, "docs": [{**d, "doc_hash": "other"} for d in _docs([1.0, 0.0])]}
    with pytest.raises(ValueError, match="different documents"):
        forgetting(base, trial)


def test_the_vendored_toy_base_items_are_current():
    rows = [json.loads(line) for line in toy_base.DATA.read_text().splitlines()]
    assert rows == toy_base.items()
    assert len(rows) == 130 and all(len(r["choices"]) == 4 and r["split"] != "train" for r in rows)
    assert {r["gold"] for r in rows} == {0, 1, 2, 3}  # the right answer moves


def test_the_base_is_scored_once_by_concurrent_workers(tmp_path, monkeypatch):
    calls = []

    def slow_run(model, tokenizer, suites):
        calls.append([s[0] for s in suites])
        time.sleep(0.5)
        return {name: SimpleNamespace(metric="acc", value=0.5, higher_is_better=True, metrics={"acc": 0.5},
                                      docs=[{"doc_id": 0, "doc_hash": "h", "score": 1.0, "acc": 1.0}]) for name, _, _ in suites}

    monkeypatch.setattr("evaluators.suites.run_suites", slow_run)
    cfg = SimpleNamespace(cache_dir=tmp_path, eval=SimpleNamespace(suites=[SimpleNamespace(name="toy_base", limit=None, metric=None)]))
    found = []
    workers = [threading.Thread(target=lambda: found.append(base_scores(cfg, model=None, tokenizer=None, model_hash="builtin:x")))
               for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert calls == [["toy_base"]] and len(found) == 3
    assert all(f["toy_base"]["value"] == 0.5 for f in found)


@pytest.mark.integration
def test_suites_run_on_the_loaded_model_with_no_network(compose, monkeypatch):
    from evaluators.suites import run_suites
    from harness.config import trial_config
    from harness.models import load_model, load_tokenizer, resolve_model

    cfg = trial_config(compose([]))
    path, _ = resolve_model(cfg.model, cache_dir=cfg.cache_dir)
    tokenizer, model = load_tokenizer(path), load_model(path, cfg=cfg.model, device="cpu")
    model.train()
    attempts = []
    real_connect = socket.socket.connect

    def refuse(sock, address, *a, **k):
        if sock.family == socket.AF_UNIX:
            return real_connect(sock, address, *a, **k)
        attempts.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: attempts.append(host) or (_ for _ in ()).throw(OSError("no DNS")))
    results = run_suites(model, tokenizer, [("stdlib", 12, None), ("toy_base", None, None)])
    assert attempts == []
    assert model.training  # lm-eval's eval() was undone
    stdlib, base = results["stdlib"], results["toy_base"]
    assert stdlib.metric == "bits_per_byte" and not stdlib.higher_is_better and len(stdlib.docs) == 12
    # the aggregate is lm-eval's ratio of sums, recomputed from the per-document (log-likelihood, bytes)
    nats, nbytes = zip(*(d["bits_per_byte"] for d in stdlib.docs))
    assert stdlib.value == pytest.approx(-sum(nats) / sum(nbytes) / 0.6931471805599453)
    assert base.metric == "acc" and len(base.docs) == 130 and base.value > 0.5  # the base knows its families
    assert all(len(d["filtered_resps"]) == 4 for d in base.docs)


@pytest.mark.integration
def test_a_hub_only_suite_fails_before_any_training(tmp_path):
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "harness.sweep", "+sweep=smoke", f"runs_dir={tmp_path}", "tracking=none",
                           "eval.suites=[{name: hellaswag}]"], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "'hellaswag' is not a local suite (stdlib, toy_base)" in proc.stderr and "no trial was started" in proc.stderr
    assert time.time() - started < 60 and not list((tmp_path / "smoke").glob("trial-*"))


def test_forgetting_is_accepted_as_a_study_objective(compose):
    from harness.errors import ConfigError
    from harness.sweep import validate

    ok = ["study.objectives=[{metric: toy/pass@1, direction: maximize}, {metric: forgetting/toy_base, direction: minimize}]"]
    study = validate(compose(ok), ok)
    assert [o.metric for o in study.objectives] == ["toy/pass@1", "forgetting/toy_base"]
    assert validate(compose(["study.objectives=[{metric: stdlib/bits_per_byte, direction: minimize}]"]), []).objectives
    bad = ["study.objectives=[{metric: forgetting/hellaswag, direction: minimize}]"]
    with pytest.raises(ConfigError, match="forgetting/hellaswag"):
        validate(compose(bad), bad)
