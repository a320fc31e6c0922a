"""A study's identity: same name + same definition resumes; another definition is refused fast."""

from __future__ import annotations

import json
import time

import pytest

from harness.identity import RUNTIME_KEYS, StudyMismatch, adopt_definition, definition, differences, fingerprint

SMOKE = ["+sweep=smoke", "eval.sandbox=process", "tracking=none"]


def test_runtime_knobs_are_not_part_of_the_definition(compose):
    a = definition(compose(SMOKE))
    b = definition(compose(SMOKE + ["launcher.n_workers=4", "storage=journal", "study.n_trials=9", "eval.workers=1",
                                    "train.num_threads=1", "runs_dir=/elsewhere", "tracking=wandb", "study.max_retries=5",
                                    "train.gradient_checkpointing=true", "model.attn_implementation=eager"]))
    assert a == b and fingerprint(a) == fingerprint(b)
    assert not any(k.startswith(("launcher", "storage", "tracking", "runs_dir")) for k in a)
    assert "search_space.method.r.choices" in a and "train.max_steps" in a and "model.path" in a
    assert "study.name" in RUNTIME_KEYS


def test_what_a_trial_means_is_part_of_it(compose):
    base = definition(compose(SMOKE))
    for override, key in [("train.max_steps=31", "train.max_steps"), ("method=dora", "method.name"),
                          ("seed=1", "seed"), ("study.sampler.seed=3", "study.sampler.seed"),
                          ("train.optim=adafactor", "train.optim"), ("train.neftune_alpha=5", "train.neftune_alpha")]:
        assert key in differences(base, definition(compose(SMOKE + [override])), {}), override


def test_a_key_added_later_at_its_default_changes_nothing():
    stored = {"train.max_steps": 30}
    current = {"train.max_steps": 30, "train.new_knob": 1}
    assert differences(stored, current, defaults={"train.new_knob": 1}) == []
    assert differences(stored, {**current, "train.new_knob": 2}, defaults={"train.new_knob": 1}) == ["train.new_knob"]


def test_allow_changed_continues_and_records_the_change(tmp_path):
    import optuna

    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db", study_name="s")
    adopt_definition(study, name="s", current={"a": 1}, defaults={}, allow_changed=False)
    with pytest.raises(StudyMismatch, match=r"a: 1 -> 2"):
        adopt_definition(study, name="s", current={"a": 2}, defaults={}, allow_changed=False)
    ident = adopt_definition(study, name="s", current={"a": 2}, defaults={}, allow_changed=True)
    assert ident.changed == ["a"]
    assert study.user_attrs["harness:definition_changes"][0]["keys"] == {"a": [1, 2]}
    assert study.user_attrs["harness:definition"] == {"a": 2}


def test_same_name_other_definition_is_refused_before_anything_runs(tmp_path, compose, capsys):
    """The stored definition is compared before pre-flight, training or study.json are touched."""
    import optuna

    from harness.config import study_config
    from harness.study import open_study
    from harness.sweep import run_sweep

    first = SMOKE + [f"runs_dir={tmp_path}"]
    raw = compose(first)
    study, _ = open_study(study_config(raw))
    adopt_definition(study, name="smoke", current=definition(raw), defaults={}, allow_changed=False)
    (tmp_path / "smoke" / "study.json").write_text('{"name": "smoke", "fingerprint": "before"}\n')

    second = first + ["model=qwen2.5-coder-0.5b", "train.max_steps=40"]
    t0 = time.perf_counter()
    code = run_sweep(compose(second), second)
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert code == 2 and elapsed < 5
    assert "exists with a different definition" in err
    assert "model.name: \"tiny\" -> \"qwen2.5-coder-0.5b\"" in err and "train.max_steps: 30 -> 40" in err
    assert "study.name=<new name>" in err and "study.allow_changed=true" in err
    assert json.loads((tmp_path / "smoke" / "study.json").read_text())["fingerprint"] == "before"
    assert len(optuna.load_study(study_name="smoke", storage=f"sqlite:///{tmp_path}/smoke/optuna.db").trials) == 0


def test_a_new_study_will_not_write_over_an_older_studys_records(tmp_path, compose, capsys):
    from harness.sweep import run_sweep

    overrides = SMOKE + [f"runs_dir={tmp_path}", "storage=journal"]
    (tmp_path / "smoke" / "trial-0").mkdir(parents=True)
    (tmp_path / "smoke" / "study.json").write_text('{"fingerprint": "0123"}')
    assert run_sweep(compose(overrides), overrides) == 2
    assert "holds 1 trial record(s) of an earlier study (fingerprint 0123)" in capsys.readouterr().err
