"""The generation engines' contract, run against every entry of ``evaluators.engines.ENGINES``:
greedy tokens equal ``model.generate`` on each prompt alone; sampled completions depend only on
(seed, task, sample), not on batch size, order or the other prompts; results in input order; the
stop check sees a stop at the step it is completed.

A new engine is an entry in ENGINES plus a case in CASES below (a test checks both lists agree)."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from evaluators.engines import ENGINES, StopCheck, choose_tokens, row_uniforms


class Case(NamedTuple):
    steps_finished_rows: bool  # keeps computing rows that are done until its batch ends (model.generate does)
    drives_prompt_learning: bool  # runs a peft prompt-tuning model (``unsupported`` says None)


# engine name -> what the contract expects of it beyond the shared guarantees
CASES: dict[str, Case] = {
    "hf": Case(steps_finished_rows=False, drives_prompt_learning=False),
    "hf_generate": Case(steps_finished_rows=True, drives_prompt_learning=True),
}


def test_every_registered_engine_has_a_case_here():
    assert set(CASES) == set(ENGINES)
    assert all(engine.name == name for name, engine in ENGINES.items())


@pytest.fixture(scope="module")
def toy():
    from evaluators.benchmarks import load_benchmark

    return load_benchmark("toy", split="test", limit=24)


def _settings(**kw):
    from evaluators.generate import GenerationSettings

    return GenerationSettings(**{"max_new_tokens": 40, "batch_size": 16, **kw})


@pytest.fixture(scope="module")
def greedy_alone(tiny, toy):
    """Each prompt through ``model.generate`` alone (no padding), greedy, cut where the stop check stops it."""
    import torch

    model, tokenizer = tiny
    prompts = [t.prompt for t in toy.tasks][::-1]  # mixed lengths, not in length order
    check, out = StopCheck(tokenizer, toy.stop), []
    with torch.inference_mode():
        for ids in tokenizer(prompts)["input_ids"]:
            new = model.generate(torch.tensor([ids]), max_new_tokens=40, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)[0, len(ids):].tolist()
            out.append(new[:next((n for n in range(1, len(new) + 1) if check.done([new[:n]])[0]), len(new))])
    return prompts, out


@pytest.mark.integration
@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_greedy_tokens_equal_generate_on_each_prompt_alone(tiny, toy, greedy_alone, engine):
    model, tokenizer = tiny
    prompts, alone = greedy_alone
    settings = _settings(batch_size=8)  # rows leave and others join many times
    got = ENGINES[engine].generate_ids(model, tokenizer, tokenizer(prompts)["input_ids"], keys=prompts, settings=settings,
                                       stop=toy.stop, progress=lambda n: None)
    assert sum(mine != ref for (mine,), ref in zip(got, alone)) == 0
    assert any(len(mine) < 40 for (mine,) in got)  # rows did stop early


@pytest.mark.integration
@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_a_sampled_completion_depends_on_its_task_and_sample_only(tiny, toy, engine):
    from evaluators.generate import generate

    model, tokenizer = tiny
    prompts, keys = [t.prompt for t in toy.tasks][:12], [t.task_id for t in toy.tasks][:12]
    base = _settings(n_samples=3, temperature=1.2, top_p=0.95, seed=7, engine=engine)
    together = generate(model, tokenizer, prompts, keys=keys, settings=base, stop=toy.stop)
    small = generate(model, tokenizer, prompts[::-1], keys=keys[::-1], settings=_settings(**{**base.__dict__, "batch_size": 3}),
                     stop=toy.stop)[::-1]
    alone = generate(model, tokenizer, prompts[5:6], keys=keys[5:6], settings=base, stop=toy.stop)[0]
    assert small == together  # another batch size and order: the same draws
    assert alone == together[5]  # without the other prompts
    assert any(len(set(samples)) > 1 for samples in together)  # samples of one task differ from each other
    reseeded = generate(model, tokenizer, prompts, keys=keys, settings=_settings(**{**base.__dict__, "seed": 8}), stop=toy.stop)
    assert reseeded != together


@pytest.mark.integration
def test_the_engines_sample_the_same_completions(tiny, toy):
    from evaluators.generate import generate

    model, tokenizer = tiny
    prompts = [t.prompt for t in toy.tasks][:12]
    outs = {name: generate(model, tokenizer, prompts, settings=_settings(n_samples=3, temperature=0.8, top_p=0.95, engine=name),
                           stop=toy.stop) for name in ENGINES}
    first, *rest = outs.values()
    assert all(o == first for o in rest)


@pytest.mark.integration
def test_only_the_engines_that_say_so_compute_steps_for_finished_rows(tiny, toy):
    model, tokenizer = tiny
    prompts = [t.prompt for t in toy.tasks]
    ids = tokenizer(prompts)["input_ids"]
    settings = _settings(n_samples=4, temperature=1.0, batch_size=16)
    stats = {}
    for name in ENGINES:
        ENGINES[name].generate_ids(model, tokenizer, ids, keys=prompts, settings=settings, stop=toy.stop, progress=lambda n: None)
        stats[name] = dict(ENGINES[name].stats)
    assert len({s["useful_row_steps"] for s in stats.values()}) == 1  # the same completions, token for token
    for name, s in stats.items():
        assert (s["row_steps"] > s["useful_row_steps"]) == CASES[name].steps_finished_rows, (name, s)


@pytest.mark.integration
def test_a_model_the_hf_engine_cannot_drive_goes_to_hf_generate(tiny, toy, capsys):
    from peft import PromptTuningConfig, get_peft_model

    from evaluators.generate import generate, pick_engine

    model, tokenizer = tiny
    peft_model = get_peft_model(model, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    try:
        for name, case in CASES.items():
            assert (ENGINES[name].unsupported(peft_model) is None) == case.drives_prompt_learning, name
        assert pick_engine("hf", peft_model).name == "hf_generate"
        assert "using hf_generate" in capsys.readouterr().err
        with pytest.raises(ValueError, match="unknown generation engine 'vllm'"):
            pick_engine("vllm", peft_model)
        out = generate(peft_model, tokenizer, [t.prompt for t in toy.tasks][:3], settings=_settings(), stop=toy.stop)
        assert len(out) == 3 and all(len(s) == 1 for s in out)
    finally:
        peft_model.unload() if hasattr(peft_model, "unload") else None


def test_inverse_cdf_sampling_follows_the_distribution_and_top_p():
    import torch

    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log().expand(1000, 4)
    u = (torch.arange(1000, dtype=torch.float64) + 0.5) / 1000  # evenly spread draws: counts are the quantiles
    counts = torch.bincount(choose_tokens(logits, u, temperature=1.0, top_p=1.0), minlength=4)
    assert counts.tolist() == [500, 300, 150, 50]
    counts = torch.bincount(choose_tokens(logits, u, temperature=1.0, top_p=0.7), minlength=4)
    assert counts.tolist()[2:] == [0, 0]  # 0.5 + 0.3 reach 0.7: the tail is cut
    assert abs(counts[0] / 1000 - 0.5 / 0.8) < 0.002
    hot = torch.bincount(choose_tokens(logits, u, temperature=2.0, top_p=1.0), minlength=4)
    assert hot[3] > 50  # a higher temperature flattens the distribution
    assert choose_tokens(logits[:2], None, temperature=0, top_p=1).tolist() == [0, 0]


def test_row_streams_are_fixed_by_seed_task_and_sample():
    a = row_uniforms(0, "toy/1", 0, 16)
    assert a.tolist() == row_uniforms(0, "toy/1", 0, 16).tolist()
    for other in (row_uniforms(1, "toy/1", 0, 16), row_uniforms(0, "toy/2", 0, 16), row_uniforms(0, "toy/1", 1, 16)):
        assert other.tolist() != a.tolist()


class _CharTokenizer:
    """One character per token: a stop sequence spans as many tokens as it has characters."""

    eos_token = "$"
    alphabet = "ab\ndef#x$"
    eos_token_id = alphabet.index("$")

    def batch_decode(self, rows, skip_special_tokens=False):
        return ["".join(self.alphabet[i] for i in row) for row in rows]


def test_the_tail_stop_check_agrees_with_the_whole_text_check_at_every_step():
    import random

    rng = random.Random(0)
    tok, stop = _CharTokenizer(), ("\ndef", "\n#")
    rows = [[rng.randrange(len(tok.alphabet) - 1) for _ in range(60)] for _ in range(64)]
    rows[5][40] = tok.eos_token_id
    tail = StopCheck(tok, stop)

    def whole(row):  # the reference: the whole new text at every step
        text = "".join(tok.alphabet[i] for i in row)
        return "$" in text or any(s in text for s in stop)

    def first_stop(done, row):  # a row leaves the batch at the first step it is found done
        return next((t for t in range(1, len(row) + 1) if done(row[:t])), None)

    firsts = [first_stop(whole, r) for r in rows]
    assert [first_stop(lambda r: tail.done([r])[0], r) for r in rows] == firsts
    assert 0 < sum(f is not None for f in firsts) < 64  # some rows stopped, some did not
    short = StopCheck(tok, stop)
    short.window = 2  # too short for "\ndef": the check misses stops
    assert [first_stop(lambda r: short.done([r])[0], r) for r in rows] != firsts
