"""Packing: padding-free batches give the same loss as padded ones, with no leaking across examples."""

import pytest

torch = pytest.importorskip("torch")

from harness.data import make_collator, padding_waste, supports_packing  # noqa: E402
from harness.data.testing import tiny_tokenizer  # noqa: E402


def _model(tok, attn: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    cfg._attn_implementation = attn
    return LlamaForCausalLM(cfg).eval()


def _rows(tok, n=6):
    from evaluators.benchmarks import toy

    rows = []
    for r in toy.records("train")[:n]:
        p = tok(r["prompt"], add_special_tokens=False)["input_ids"]
        c = tok(r["completion"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        rows.append({"input_ids": p + c, "labels": [-100] * len(p) + c})
    return rows


@pytest.mark.parametrize("pack_length", [None, 64, 128], ids=["one_row", "rows64", "rows128"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_loss_equals_padded_loss(attn, pack_length):
    tok = tiny_tokenizer()
    model = _model(tok, attn)
    assert supports_packing(model)
    rows = _rows(tok, 10)
    with torch.no_grad():
        padded = model(**make_collator(tok, packing=False)(rows)).loss
        packed = model(**make_collator(tok, packing=True, pack_length=pack_length)(rows)).loss
    # Both are the mean over the same supervised tokens (token-weighted).
    assert abs(padded.item() - packed.item()) < 1e-4


def test_packed_logits_do_not_depend_on_the_neighbours():
    tok = tiny_tokenizer()
    model = _model(tok, "sdpa")
    rows = _rows(tok, 3)
    collate = make_collator(tok, packing=True)
    assert collate(rows)["use_cache"] is False  # with a KV cache transformers ignores packed position_ids
    with torch.no_grad():
        alone = model(**collate(rows[1:2])).logits[0]
        together = model(**collate(rows)).logits[0]
    start = len(rows[0]["input_ids"])
    assert torch.allclose(together[start: start + len(rows[1]["input_ids"])], alone, atol=1e-5)


def test_collators_count_real_and_padding_tokens():
    tok = tiny_tokenizer()
    rows = _rows(tok, 4)
    lengths = [len(r["input_ids"]) for r in rows]
    padded, packed = make_collator(tok, packing=False), make_collator(tok, packing=True)
    padded(rows)
    packed(rows)
    waste = max(lengths) * 4 - sum(lengths)
    assert padded.stats["padded_tokens"] == packed.stats["padding_avoided"] == waste
    assert padding_waste(lengths, 4)["padding_tokens"] == waste


def test_bounded_rows_hold_several_examples_and_restart_positions():
    tok = tiny_tokenizer()
    rows = _rows(tok, 10)
    batch = make_collator(tok, packing=True, pack_length=128)(rows)
    assert batch["input_ids"].shape[0] < len(rows) and batch["input_ids"].shape[1] <= 128
    starts = int((batch["position_ids"] == 0).sum())
    assert starts >= len(rows)  # one run per example (+ one per padded row tail)
    supervised = sum(sum(x != -100 for x in r["labels"][1:]) for r in rows)
    assert int((batch["labels"] != -100).sum()) == supervised
