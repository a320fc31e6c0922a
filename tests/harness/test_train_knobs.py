"""The training knobs: train.epochs.
Short real trainings (HF Trainer, a few steps) on the tiny test Llama, and
each refusal where a knob cannot apply."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from harness.config import TrainConfig, from_dict  # noqa: E402
from harness.errors import ConfigError  # noqa: E402
from tests.harness.test_methods_models import tiny_model  # noqa: E402

VOCAB = 64  # the tiny test Llama's


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _data(n: int, *, seed: int = 0) -> list[dict]:
    """``n`` examples of varying length (6-14 tokens), so batches carry padding and an attention mask."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        length = int(torch.randint(6, 15, (1,), generator=g))
        ids = torch.randint(3, VOCAB, (length,), generator=g).tolist()
        rows.append({"input_ids": ids, "labels": ids})
    return rows


def _cfg(**overrides) -> TrainConfig:
    values = {"max_steps": 3, "batch_size": 4, "learning_rate": 1e-2, "eval_steps": 100, "logging_steps": 1,
              "device": "cpu", "precision": "fp32", **overrides}
    return from_dict(TrainConfig, values, "train")


def _train(model, cfg: TrainConfig, tmp_path, *, data=None, report=lambda step, loss: False):
    """Train with harness.train.train as a trial does; returns (TrainResult, history rows, reported steps)."""
    from harness.data.collate import PaddingCollator
    from harness.train import train

    rows, reported = [], []

    def report_and_record(step: int, loss: float) -> bool:
        reported.append(step)
        return report(step, loss)

    torch.manual_seed(0)
    result = train(model=model, tokenizer=None, train_data=data or _data(12), validation_data=_data(4, seed=1),
                   collator=PaddingCollator(pad_token_id=0), cfg=cfg, learning_rate=cfg.learning_rate, seed=0,
                   work_dir=tmp_path / "trainer", device="cpu", record_row=rows.append,
                   report=report_and_record, progress=False)
    return result, rows, reported


def _train_losses(rows: list[dict]) -> list[float]:
    return [r["train_loss"] for r in rows if "train_loss" in r]


# ---------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "overrides,key,words",
    [
        (["train.epochs=2"], "train.epochs", "train.max_steps=null"),
        (["train.max_steps=null"], "train.max_steps", "neither is set"),
        (["train.epochs=0", "train.max_steps=null"], "train.epochs", "> 0"),
    ],
)  # fmt: skip
def test_bad_knob_values_name_the_key_and_the_reason(compose, overrides, key, words):
    from harness.sweep import validate

    with pytest.raises(ConfigError) as err:
        validate(compose(overrides), overrides)
    assert err.value.key == key
    assert words in str(err.value)


# ---------------------------------------------------------------------------------------------- epochs


@pytest.mark.parametrize("n,batch_size,accumulation,epochs", [(10, 4, 1, 2), (10, 4, 2, 1.5), (7, 8, 1, 3), (33, 4, 3, 0.5)])
def test_epochs_become_the_steps_the_trainer_itself_counts(tmp_path, n, batch_size, accumulation, epochs):
    from transformers import Trainer, TrainingArguments

    from harness.data.collate import PaddingCollator
    from harness.train import plan_steps

    args = TrainingArguments(output_dir=str(tmp_path), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
                             gradient_accumulation_steps=accumulation, use_cpu=True, report_to="none")
    trainer = Trainer(model=tiny_model(), args=args, train_dataset=_data(n), data_collator=PaddingCollator(pad_token_id=0))
    trainer_max_steps = trainer.set_initial_training_values(args, trainer.get_train_dataloader())[-1]
    plan = plan_steps(_cfg(max_steps=None, epochs=epochs, batch_size=batch_size, gradient_accumulation_steps=accumulation),
                      n_examples=n)
    assert plan.max_steps == trainer_max_steps


def test_training_by_epochs_runs_the_planned_steps_and_reports_to_the_pruner(tmp_path):
    # 10 examples, batch 4: 3 steps an epoch, 6 in two; eval loss every 2 steps (and at step 0) goes to the pruner
    cfg = _cfg(max_steps=None, epochs=2, eval_steps=2)
    result, rows, reported = _train(tiny_model(), cfg, tmp_path, data=_data(10))
    assert result.steps == 6 and result.stop_reason == "max_steps"
    assert reported == [0, 2, 4, 6]
    assert len(_train_losses(rows)) == 6

    pruned, _, reported = _train(tiny_model(), cfg, tmp_path, data=_data(10), report=lambda step, loss: step >= 4)
    assert pruned.stop_reason == "pruned" and pruned.steps == 4 and reported == [0, 2, 4]
