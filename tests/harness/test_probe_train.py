"""The training stage with a probe, on a tiny random Llama and a stub probe score sequence:
``train.keep=best_probe`` leaves the kept step's weights in the model, and the probe changes
nothing about training itself (its RNG use and KV cache are undone)."""

from __future__ import annotations

import pytest

from harness.probe import ProbeScore, standard_error
from harness.train import Optimization, TrainData, TrainHooks, train
from harness.train_config import TrainConfig

SEQUENCE = {10: [0, 1, 0, 0, 0, 0], 20: [1, 1, 1, 1, 0, 0], 30: [1, 1, 0, 0, 0, 0]}  # step 20 is best, 30 worse


def _model():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32))


def _data(n: int, seed: int):
    import random

    rng = random.Random(seed)
    return [{"input_ids": (ids := [rng.randrange(64) for _ in range(12)]), "labels": list(ids)} for _ in range(n)]


def _collate(rows):
    import torch

    return {k: torch.tensor([r[k] for r in rows]) for k in ("input_ids", "labels")}


def _train(tmp_path, model, *, keep: str, probe=None, rows=None):
    cfg = TrainConfig(max_steps=30, batch_size=4, eval_steps=10, logging_steps=10, device="cpu",
                      task_eval_steps=10 if probe else None, keep=keep)
    return train(model=model, data=TrainData(train=_data(32, 0), validation=_data(8, 1), collator=_collate), cfg=cfg,
                 optimization=Optimization(learning_rate=1e-2), seed=0, work_dir=tmp_path / "work", device="cpu",
                 hooks=TrainHooks(record_row=(rows if rows is not None else []).append, probe=probe, progress=False))


def _stub_probe(model, seen: dict):
    import torch

    def probe(step: int) -> ProbeScore:
        torch.manual_seed(1234)  # as generation does: the training stage must undo it
        torch.rand(3)
        assert model.config.use_cache  # generation gets its KV cache back
        seen[step] = {n: p.detach().clone() for n, p in model.named_parameters()}
        rates = tuple(float(x) for x in SEQUENCE[step])
        return ProbeScore(step=step, pass_at_1=sum(rates) / len(rates), se=standard_error(rates), per_task=rates)

    return probe


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("probe-train")


def test_keep_best_probe_restores_the_kept_steps_weights_and_eval_loss(tmp):
    import torch

    model, seen, rows = _model(), {}, []
    result = _train(tmp, model, keep="best_probe", probe=_stub_probe(model, seen), rows=rows)
    assert sorted(seen) == [10, 20, 30]
    assert result.kept_step == 20 and result.steps == 30 and "step 20" in result.keep_reason
    assert result.probe.step == 20 and result.probe_seconds > 0
    for n, p in model.named_parameters():
        assert torch.equal(p, seen[20][n]), n
    assert not torch.equal(dict(model.named_parameters())["lm_head.weight"], seen[30]["lm_head.weight"])
    eval_at = {r["step"]: r["eval_loss"] for r in rows if "eval_loss" in r}
    assert result.eval_loss == pytest.approx(eval_at[20])
    assert [r["step"] for r in rows if "probe/pass@1" in r] == [10, 20, 30]


def test_the_probe_does_not_change_training(tmp):
    import torch

    plain, probed = _model(), _model()
    a = _train(tmp, plain, keep="last")
    b = _train(tmp, probed, keep="last", probe=_stub_probe(probed, {}))
    assert b.kept_step == 30 and b.keep_reason == "train.keep=last: the final weights" and b.probe.step == 30
    assert a.eval_loss == pytest.approx(b.eval_loss, abs=0)
    for (n, p), (_, q) in zip(plain.named_parameters(), probed.named_parameters()):
        assert torch.equal(p, q), n
