"""The contract every fine-tuning method meets, as a table (peft tests/test_custom_models.py style).

For each method on the tiny Llama: a few training steps lower the loss; only what the method should train changes
(base weights bit-identical for PEFT methods, only biases for bitfit, only the last N layers for freeze);
save -> load gives identical logits; merging (where the method allows it) keeps logits within 1e-4; and the model
`prepare_for_generation` returns can generate. Gradient checkpointing (train.gradient_checkpointing) leaves every
method's losses and gradients as they were, prefix tuning excepted (refused at the config boundary).
"""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")

from harness.methods import (  # noqa: E402
    METHODS,
    MethodUnavailable,
    apply_method,
    build_optimizer,
    load_trained,
    method_config_from_dict,
    model_load_kwargs,
    prepare_for_generation,
)
from tests.harness.test_methods_models import tiny_model  # noqa: E402

# (test id, method dict, arch, learning rate, which base parameters may change: regex on the base model's names)
# PEFT methods leave every base parameter bit-identical (pattern None).
TEST_CASES = [
    ("full", {"name": "full"}, "llama", 1e-2, r".*"),
    ("lora-qv", {"name": "lora", "r": 4}, "llama", 1e-2, None),
    ("lora-all-linear-dropout", {"name": "lora", "r": 4, "target_modules": "all-linear", "lora_dropout": 0.1},
     "llama", 1e-2, None),
    ("lora-gpt2-conv1d", {"name": "lora", "r": 4, "target_modules": "qkvo"}, "gpt2", 1e-2, None),
    ("dora", {"name": "dora", "r": 4, "use_dora": True, "target_modules": "qkvo"}, "llama", 1e-2, None),
    ("rslora", {"name": "rslora", "r": 4, "use_rslora": True}, "llama", 1e-2, None),
    ("loraplus", {"name": "loraplus", "r": 4, "loraplus_lr_ratio": 16.0}, "llama", 2e-3, None),
    ("qlora-nf4-double-quant", {"name": "qlora", "r": 4, "target_modules": "all-linear"}, "llama64", 1e-2, None),
    ("adalora", {"name": "adalora", "init_r": 6, "target_r": 2, "tinit": 2, "tfinal": 2}, "llama", 1e-2, None),
    ("ia3", {"name": "ia3"}, "llama", 5e-2, None),
    ("ia3-gpt2-preset", {"name": "ia3", "target_modules": "qkvo"}, "gpt2", 5e-2, None),
    ("prefix-ptuning-v2", {"name": "prefix", "num_virtual_tokens": 4}, "llama", 3e-2, None),
    ("prefix-projection", {"name": "prefix", "num_virtual_tokens": 4, "prefix_projection": True,
                           "encoder_hidden_size": 16}, "llama", 1e-2, None),
    ("prompt", {"name": "prompt", "num_virtual_tokens": 4}, "llama", 5e-2, None),
    ("ptuning", {"name": "ptuning", "num_virtual_tokens": 4, "encoder_hidden_size": 16}, "llama", 1e-2, None),
    ("ptuning-lstm", {"name": "ptuning", "num_virtual_tokens": 4, "encoder_hidden_size": 16,
                      "encoder_reparameterization_type": "lstm"}, "llama", 1e-2, None),
    ("bitfit-qwen2", {"name": "bitfit"}, "qwen2", 1e-2, r".*\.bias"),
    ("bitfit-gpt2", {"name": "bitfit"}, "gpt2", 1e-2, r".*\.bias"),
    ("bitfit-llama-norms", {"name": "bitfit", "include_norm_weights": True}, "llama", 1e-2, r".*norm\.weight"),
    ("freeze-last-layer", {"name": "freeze", "num_trainable_layers": 1}, "llama", 1e-2, r"model\.layers\.1\..*"),
    ("freeze-gpt2-plus-final-norm", {"name": "freeze", "num_trainable_layers": 1, "extra_modules": ["transformer.ln_f"]},
     "gpt2", 1e-2, r"transformer\.(h\.1|ln_f)\..*"),
]  # fmt: skip

STEPS = 8
# Adapter parameters peft adds (never present in the base model).
_ADAPTER = re.compile(r"lora_|ia3_|prompt_encoder|prompt_embeddings|ranknum")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _batch(vocab: int = 64) -> dict:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, vocab, (4, 12), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}


def _optimizer(model, cfg, lr: float):
    """The optimizer a trial on this CPU builds: the method's own (LoRA+), else its default_optim (qlora: 8-bit AdamW
    here, paged on CUDA), else AdamW."""
    from harness.optimizers import optimizer_class, resolve_optim

    optim, _ = resolve_optim(None, cfg.default_optim, device="cpu")
    own = build_optimizer(model, cfg, learning_rate=lr, optim=optim, device="cpu")
    if own is not None:
        return own
    optimizer_cls, kwargs = optimizer_class(optim, learning_rate=lr, device="cpu")
    return optimizer_cls([p for p in model.parameters() if p.requires_grad], **kwargs)


def _train(applied, cfg, lr: float, steps: int = STEPS) -> list[float]:
    model = applied.model
    model.train()
    opt = _optimizer(model, cfg, lr)
    batch, losses = _batch(), []
    for step in range(steps):
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        if applied.on_optimizer_step is not None:
            applied.on_optimizer_step(step)
        opt.zero_grad()
        losses.append(loss.item())
    return losses


def _load_base(arch: str, cfg, tmp_path):
    """The tiny model, or for methods with load kwargs (qlora) the same weights reloaded through from_pretrained."""
    if METHODS[cfg.name].load_kwargs is None:
        return tiny_model(arch)
    try:
        kwargs = model_load_kwargs(cfg, device="cpu")
    except MethodUnavailable as exc:
        pytest.skip(str(exc))
    path = tmp_path / "base"
    if not path.exists():
        tiny_model(arch).save_pretrained(path)
    return type(tiny_model(arch)).from_pretrained(path, **kwargs)


def _logits(model) -> torch.Tensor:
    model.eval()
    batch = _batch()
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def _base_params(model) -> dict[str, torch.Tensor]:
    """The base model's parameters under their original names (peft's ".base_layer" stripped, adapters dropped)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return {
        name.replace(".base_layer", ""): p.detach().float().clone()  # float: kbit preparation upcasts norms
        for name, p in base.named_parameters(remove_duplicate=False)
        if not _ADAPTER.search(name)
    }


def test_every_registered_method_has_a_case_here():
    assert {method["name"] for _, method, *_ in TEST_CASES} == set(METHODS)
    assert all(spec.name == name and spec.summary for name, spec in METHODS.items())


@pytest.mark.parametrize(("case", "method", "arch", "lr", "may_change"), TEST_CASES, ids=[c[0] for c in TEST_CASES])
def test_method_contract(case, method, arch, lr, may_change, tmp_path):
    cfg = method_config_from_dict(method)
    spec = METHODS[cfg.name]
    model = _load_base(arch, cfg, tmp_path)
    pristine = _base_params(model)
    applied = apply_method(model, cfg, total_steps=STEPS)
    assert 0 < applied.trainable_params <= applied.total_params

    # 1. training lowers the loss
    losses = _train(applied, cfg, lr)
    assert losses[-1] < losses[0], losses

    # 2. only what the method trains has changed
    after = _base_params(applied.model)
    assert set(after) == set(pristine)
    changed = {n for n in pristine if not torch.equal(pristine[n], after[n])}
    if may_change is None:
        assert not changed, f"base weights changed: {sorted(changed)[:5]}"
        trainable = [n for n, p in applied.model.named_parameters() if p.requires_grad]
        assert trainable and all(_ADAPTER.search(n) for n in trainable), trainable
    else:
        assert changed, "no parameter changed"
        assert all(re.fullmatch(may_change, n) for n in changed), sorted(changed)

    # 3. save -> load round trip gives identical logits
    reference = _logits(applied.model)
    applied.model.save_pretrained(tmp_path / "saved")
    loaded = load_trained(_load_base(arch, cfg, tmp_path), cfg, str(tmp_path / "saved"))
    torch.testing.assert_close(_logits(loaded), reference, rtol=0, atol=1e-6)

    # 4. merge (where allowed) keeps logits within 1e-4; the generation model generates
    gen_model = prepare_for_generation(applied.model, cfg)
    if spec.mergeable:
        assert not hasattr(gen_model, "peft_config"), "mergeable method left a peft wrapper"
        torch.testing.assert_close(_logits(gen_model), reference, rtol=0, atol=1e-4)
    prompt = _batch()["input_ids"][:1, :5]
    out = gen_model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=3,
                             do_sample=False, pad_token_id=0)  # fmt: skip
    assert out.shape[-1] == 8


def test_adalora_eval_loss_is_plain_cross_entropy():
    """The orthogonality penalty is a training regulariser; the eval loss must compare with other methods'."""
    applied = apply_method(tiny_model(), method_config_from_dict({"name": "adalora", "init_r": 4, "target_r": 2}), total_steps=10)
    ids = torch.randint(3, 64, (2, 8), generator=torch.Generator().manual_seed(0))
    applied.model.eval()
    with torch.no_grad():
        out = applied.model(input_ids=ids, labels=ids)
    expected = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, 64), ids[:, 1:].reshape(-1))
    torch.testing.assert_close(out.loss, expected)
    applied.model.train()
    assert applied.model(input_ids=ids, labels=ids).loss > expected + 1e-3  # the penalty applies in training


CHECKPOINTABLE = [c for c in TEST_CASES if c[1]["name"] != "prefix"]  # prefix + checkpointing is refused (test_train_knobs)


@pytest.mark.parametrize(("case", "method", "arch", "lr", "may_change"), CHECKPOINTABLE, ids=[c[0] for c in CHECKPOINTABLE])
def test_gradient_checkpointing_keeps_the_losses(case, method, arch, lr, may_change, tmp_path):
    """Two steps with and without checkpointing from the same initialisation: the same losses, so the same gradients
    reached the trainable parameters (a frozen base under an adapter included: non-reentrant checkpointing)."""
    from harness.train import enable_gradient_checkpointing

    cfg = method_config_from_dict(method)
    _load_base(arch, cfg, tmp_path)  # built (and seeded) once before, not inside the first of the two runs
    losses = []
    for checkpointing in (False, True):
        torch.manual_seed(0)  # the same adapter initialisation both times
        applied = apply_method(_load_base(arch, cfg, tmp_path), cfg, total_steps=STEPS)
        if checkpointing:
            enable_gradient_checkpointing(applied.model)
        losses.append(_train(applied, cfg, lr, steps=2))
    torch.testing.assert_close(losses[1], losses[0], rtol=0, atol=1e-5)
