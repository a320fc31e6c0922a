"""The training knobs: train.epochs, train.optim, train.gradient_checkpointing, train.neftune_alpha,
model.attn_implementation. Short real trainings (HF Trainer, a few steps) on the tiny test Llama, and
each refusal where a knob cannot apply."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from harness.errors import ConfigError  # noqa: E402
from harness.models.config import ModelConfig  # noqa: E402
from harness.schema import from_dict  # noqa: E402
from harness.train_config import TrainConfig  # noqa: E402
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
    from harness.train import Optimization, TrainData, TrainHooks, train

    rows, reported = [], []

    def report_and_record(step: int, loss: float) -> bool:
        reported.append(step)
        return report(step, loss)

    torch.manual_seed(0)
    result = train(model=model, data=TrainData(train=data or _data(12), validation=_data(4, seed=1),
                                               collator=PaddingCollator(pad_token_id=0)),
                   cfg=cfg, optimization=Optimization(learning_rate=cfg.learning_rate), seed=0, work_dir=tmp_path / "trainer",
                   device="cpu", hooks=TrainHooks(record_row=rows.append, report=report_and_record, progress=False))
    return result, rows, reported


def _train_losses(rows: list[dict]) -> list[float]:
    return [r["train_loss"] for r in rows if "train_loss" in r]


def _lora(model):
    from harness.methods import apply_method, method_config_from_dict

    torch.manual_seed(0)
    return apply_method(model, method_config_from_dict({"name": "lora", "r": 4, "target_modules": "all-linear"})).model


# ---------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "overrides,key,words",
    [
        (["train.epochs=2"], "train.epochs", "train.max_steps=null"),
        (["train.max_steps=null"], "train.max_steps", "neither is set"),
        (["train.epochs=0", "train.max_steps=null"], "train.epochs", "> 0"),
        (["train.optim=adamw_fast"], "train.optim", "not an optimizer transformers accepts"),
        (["train.optim=galore_adamw"], "train.optim", "optim_target_modules"),
        (["train.optim=adamw_torch_xla"], "train.optim", "TPU"),
        (["train.neftune_alpha=0"], "train.neftune_alpha", "> 0"),
        (["train.gradient_checkpointing=maybe"], "train.gradient_checkpointing", "true or false"),
        (["model.attn_implementation=flash"], "model.attn_implementation", "sdpa"),
        (["model.attn_implementation=flash_attention_2"], "model.attn_implementation", "float16 or bfloat16"),
        (["method=prefix", "train.gradient_checkpointing=true"], "train.gradient_checkpointing", "method=prefix"),
        (["method=qlora", "+method.optim=adamw_torch"], "method.optim", "moved to train.optim"),
        (["method=full", "+method.gradient_checkpointing=true"], "method.gradient_checkpointing", "moved to train.gradient_checkpointing"),
    ],
)  # fmt: skip
def test_bad_knob_values_name_the_key_and_the_reason(compose, overrides, key, words):
    from harness.sweep import validate

    with pytest.raises(ConfigError) as err:
        validate(compose(overrides), overrides)
    assert err.value.key == key
    assert words in str(err.value)


def test_the_optimizer_names_are_transformers_own():
    from transformers.training_args import OptimizerNames

    from harness.optimizers import NAMES

    assert set(NAMES) == {o.value for o in OptimizerNames}


def test_flash_attention_is_refused_without_cuda():
    from harness.models import check_attention

    cfg = ModelConfig(name="m", path="x", dtype="bfloat16", attn_implementation="flash_attention_2")
    with pytest.raises(ConfigError, match=r"model.attn_implementation='flash_attention_2': FlashAttention-2 needs a CUDA GPU .* cpu"):
        check_attention(cfg, device="cpu")
    check_attention(ModelConfig(name="m", path="x", attn_implementation="sdpa"), device="cpu")  # nothing to refuse


def test_flash_attention_is_refused_without_the_flash_attn_package(monkeypatch):
    import importlib.util

    from harness.models import check_attention

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "flash_attn" else real_find_spec(name, *a))
    cfg = ModelConfig(name="m", path="x", dtype="bfloat16", attn_implementation="flash_attention_2")
    with pytest.raises(ConfigError, match="needs the flash-attn package, which is not installed"):
        check_attention(cfg, device="cuda")


def test_a_paged_optimizer_is_refused_without_cuda():
    from harness.optimizers import check_available

    with pytest.raises(ConfigError, match=r"train.optim='paged_adamw_8bit': a paged optimizer needs CUDA .* Use adamw_8bit"):
        check_available("paged_adamw_8bit", device="cpu")


def test_an_8bit_optimizer_is_refused_without_bitsandbytes(monkeypatch):
    import transformers.trainer_optimizer as trainer_optimizer

    from harness.optimizers import check_available

    monkeypatch.setattr(trainer_optimizer, "is_bitsandbytes_available", lambda: False)
    with pytest.raises(ConfigError, match=r"train.optim='adamw_8bit': cannot be built here: .*bitsandbytes"):
        check_available("adamw_8bit", device="cpu")


def test_an_8bit_optimizer_runs_where_bitsandbytes_has_a_backend_for_the_device():
    pytest.importorskip("bitsandbytes")
    from harness.optimizers import check_available

    check_available("adamw_8bit", device="cpu")  # bitsandbytes >= 0.45 steps 8-bit AdamW on a CPU (a real step)


def test_qlora_default_optimizer_goes_unpaged_without_cuda_and_says_so():
    from harness.optimizers import resolve_optim

    assert resolve_optim(None, "paged_adamw_8bit", device="cuda") == ("paged_adamw_8bit", None)
    name, note = resolve_optim(None, "paged_adamw_8bit", device="cpu")
    assert name == "adamw_8bit" and "needs CUDA" in note
    assert resolve_optim("paged_adamw_8bit", None, device="cpu") == ("paged_adamw_8bit", None)  # explicit: refused later
    assert resolve_optim(None, None, device="cpu") == ("adamw_torch", None)


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


# ---------------------------------------------------------------------------------------------- attention


def test_eager_and_sdpa_attention_give_the_same_losses(tmp_path):
    from harness.models import load_model

    tiny_model().save_pretrained(tmp_path / "base")
    losses = {}
    for attn in ("eager", "sdpa"):
        cfg = ModelConfig(name="tiny-test", path=str(tmp_path / "base"), dtype="float32", attn_implementation=attn)
        model = load_model(str(tmp_path / "base"), cfg=cfg, device="cpu")
        assert model.config._attn_implementation == attn
        _, rows, _ = _train(model, _cfg(), tmp_path)
        losses[attn] = _train_losses(rows)
    assert len(losses["eager"]) == 3
    torch.testing.assert_close(losses["sdpa"], losses["eager"], rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------- NEFTune


def test_neftune_perturbs_training_only_and_is_removed_afterwards(tmp_path):
    plain = _train(_lora(tiny_model()), _cfg(eval_steps=1), tmp_path)[1]
    model = _lora(tiny_model())
    noisy = _train(model, _cfg(eval_steps=1, neftune_alpha=5.0), tmp_path)[1]

    def evals(rows):
        return [r["eval_loss"] for r in rows if "eval_loss" in r]

    # step 0's eval loss is the untouched model's in both runs: no noise outside training
    assert evals(noisy)[0] == evals(plain)[0]
    # the first training loss already sees noisy embeddings (same weights, same batch)
    assert _train_losses(noisy)[0] != _train_losses(plain)[0]
    assert all(abs(a - b) < 0.5 for a, b in zip(_train_losses(noisy), _train_losses(plain)))  # noise, not damage
    embeddings = model.get_base_model().get_input_embeddings()
    assert not embeddings._forward_hooks, "the NEFTune hook outlived training"


# ---------------------------------------------------------------------------------------------- checkpointing


@pytest.mark.parametrize("method", ["full", "lora"])
def test_gradient_checkpointing_keeps_the_losses_and_lowers_activation_memory(tmp_path, method):
    """3 steps on the tiny Llama with and without checkpointing: the same losses, fewer activation bytes."""
    from harness.train import disable_gradient_checkpointing, enable_gradient_checkpointing
    from perf.bench_grad_checkpointing import peak_activation_memory

    def model():
        return _lora(tiny_model()) if method == "lora" else tiny_model()

    off = _train(model(), _cfg(), tmp_path)[1]
    checkpointed = model()
    on = _train(checkpointed, _cfg(gradient_checkpointing=True), tmp_path)[1]
    torch.testing.assert_close(_train_losses(on), _train_losses(off), rtol=0, atol=1e-6)
    assert not checkpointed.get_base_model().is_activation_checkpointing if method == "lora" \
        else not checkpointed.is_activation_checkpointing  # off again after training

    batch = {"input_ids": torch.randint(3, VOCAB, (8, 48), generator=torch.Generator().manual_seed(2))}
    batch["labels"] = batch["input_ids"]
    measured = model()
    without = peak_activation_memory(measured, batch)
    enable_gradient_checkpointing(measured)
    with_it = peak_activation_memory(measured, batch)
    disable_gradient_checkpointing(measured)
    assert with_it["activation_mib"] < without["activation_mib"]
    assert with_it["above_start_mib"] < without["above_start_mib"]
