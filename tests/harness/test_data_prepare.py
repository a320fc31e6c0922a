"""prepare_data on the embedded toy default: the contract harness.trial codes against."""

import json
from pathlib import Path

import pytest
import yaml

from harness.data import DataConfig, make_collator, prepare_data
from harness.data.testing import tiny_tokenizer

TOY = yaml.safe_load((Path(__file__).resolve().parents[2] / "conf" / "data" / "toy.yaml").read_text())


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def toy_prepared(tok, tmp_path_factory):
    return prepare_data(DataConfig.from_dict(TOY), tokenizer=tok, eval_benchmarks=["toy"],
                        cache_dir=tmp_path_factory.mktemp("cache"), seed=0)


def test_toy_train_and_validation_are_masked_examples(toy_prepared, tok):
    p = toy_prepared
    assert len(p.train) > 500 and len(p.validation) > 50
    for row in p.train[:50] + p.validation[:10]:
        ids, labels = row["input_ids"], row["labels"]
        assert len(ids) == len(labels) <= 256
        first = next(i for i, x in enumerate(labels) if x != -100)
        assert first > 0 and labels[first:] == ids[first:] and ids[-1] == tok.eos_token_id


def test_toy_prompt_tokens_match_eval_time_tokenization(toy_prepared, tok):
    from evaluators.benchmarks import toy

    rec = toy.records("train")[0]
    row = toy_prepared.train[[json.dumps(r["input_ids"]) for r in toy_prepared.train].index(json.dumps(
        tok(rec["prompt"])["input_ids"] + tok(rec["completion"])["input_ids"] + [tok.eos_token_id]))]
    n_prompt = len(tok(rec["prompt"])["input_ids"])
    assert row["labels"][:n_prompt] == [-100] * n_prompt


def test_hygiene_keeps_the_whole_toy_train_set(toy_prepared):
    from evaluators.benchmarks import toy

    h = toy_prepared.report["hygiene"]
    assert h["dropped"] == {}
    assert h["input"] == len(toy.records("train")) + len(toy.records("validation"))
    assert h["decontamination"]["literal"]["parts_checked"]["toy"] > 150


def test_report_is_json_and_records_what_a_trial_needs(toy_prepared):
    r = json.loads(json.dumps(toy_prepared.report))
    assert r["template"] == toy_prepared.template == "none"
    assert r["data_hash"] == toy_prepared.data_hash
    assert r["counts"] == {"train": len(toy_prepared.train), "validation": len(toy_prepared.validation)}
    assert sum(r["token_lengths"]["counts"]) == len(toy_prepared.train)
    assert r["mixture_achieved"] == {"toy": 1.0}


def test_second_call_is_a_cache_hit_with_identical_data(tok, tmp_path):
    cfg = DataConfig.from_dict(TOY)
    a = prepare_data(cfg, tokenizer=tok, eval_benchmarks=["toy"], cache_dir=tmp_path, seed=0)
    b = prepare_data(cfg, tokenizer=tok, eval_benchmarks=["toy"], cache_dir=tmp_path, seed=0)
    assert (a.report["cache"]["hit"], b.report["cache"]["hit"]) == (False, True)
    assert (a.train, a.validation, a.data_hash) == (b.train, b.validation, b.data_hash)
    c = prepare_data(DataConfig.from_dict({**TOY, "cutoff_len": 128}), tokenizer=tok, eval_benchmarks=["toy"],
                     cache_dir=tmp_path, seed=0)
    assert c.report["cache"]["hit"] is False


def test_families_restrict_the_toy_train_split(tok, tmp_path):
    cfg = DataConfig.from_dict({**TOY, "families": ["add", "take"]})
    p = prepare_data(cfg, tokenizer=tok, eval_benchmarks=["toy"], cache_dir=tmp_path, seed=0)
    assert 40 < len(p.train) < 100


def test_collator_right_pads(toy_prepared, tok):
    batch = make_collator(tok, packing=False)(toy_prepared.train[:4])
    lengths = [len(r["input_ids"]) for r in toy_prepared.train[:4]]
    assert batch["input_ids"].shape == (4, max(lengths))
    for row, n in enumerate(lengths):
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (max(lengths) - n)
        assert batch["labels"][row, n:].eq(-100).all() and batch["input_ids"][row, n:].eq(tok.pad_token_id).all()


def test_packing_collator_flattens_with_restarting_positions(toy_prepared, tok):
    rows = toy_prepared.train[:3]
    batch = make_collator(tok, packing=True)(rows)
    total = sum(len(r["input_ids"]) for r in rows)
    assert batch["input_ids"].shape == (1, total) and "attention_mask" not in batch
    expected = [i for r in rows for i in range(len(r["input_ids"]))]
    assert batch["position_ids"][0].tolist() == expected
