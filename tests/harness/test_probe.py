"""The in-training probe: its task set, its statistics, when it runs, what the pruner sees, and
which checkpoint ``train.keep`` leaves in the model (stub probe scores, no sandbox)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.config import study_config, trial_config
from harness.errors import ConfigError
from harness.keep import Keeper
from harness.probe import ProbeScore, escape_text, load_probe_set, paired_gain, standard_error
from harness.train_config import ProbeConfig
from harness.watch import watch_training


def score(step: int, passed: list[int]) -> ProbeScore:
    rates = tuple(float(p) for p in passed)
    return ProbeScore(step=step, pass_at_1=sum(rates) / len(rates), se=standard_error(rates), per_task=rates)


# -- the probe set ----------------------------------------------------------------------------------


def test_the_toy_probe_is_a_fixed_seeded_draw_from_validation_disjoint_from_train_and_test():
    from evaluators.benchmarks.toy import instances

    a, b = load_probe_set(ProbeConfig(size=24, seed=0)), load_probe_set(ProbeConfig(size=24, seed=0))
    ids = [t.task_id for t in a.tasks]
    assert ids == [t.task_id for t in b.tasks] and len(set(ids)) == 24
    assert ids != [t.task_id for t in load_probe_set(ProbeConfig(size=24, seed=1)).tasks]
    others = {i.task_id for i in instances("train")} | {i.task_id for i in instances("test")}
    assert not set(ids) & others
    assert a.meta["probe"]["task_ids"] == ids and a.meta["probe"]["split"] == "validation"


def test_the_mbpp_probe_draws_validation_ids_511_to_600():
    probe = load_probe_set(ProbeConfig(benchmark="mbpp", size=40))
    assert len(probe.tasks) == 40
    assert all(511 <= int(t.task_id.split("/")[1]) <= 600 for t in probe.tasks)


@pytest.mark.parametrize("key,value,text", [
    ("split", "test", "never test"),
    ("benchmark", "humaneval", "validation split"),
    ("size", 0, "must be > 0"),
])
def test_a_probe_on_test_problems_or_without_a_validation_split_is_refused(key, value, text):
    with pytest.raises(ConfigError, match=text):
        ProbeConfig(**{key: value})


def test_keep_best_probe_needs_the_probe(compose):
    with pytest.raises(ConfigError, match="train.keep"):
        trial_config(compose(["train.task_eval_steps=null", "train.keep=best_probe"]))


# -- statistics and escaping ------------------------------------------------------------------------


def test_standard_error_and_paired_gain():
    assert standard_error([1, 0, 1, 0]) == pytest.approx(0.2887, abs=1e-4)  # sd 0.577 / 2
    gain, se = paired_gain((0, 0, 1, 1), (1, 1, 1, 1))
    assert gain == 0.5 and se == pytest.approx(0.2887, abs=1e-4)
    with pytest.raises(ValueError):
        paired_gain((0,), (0, 1))


def test_generations_are_escaped_for_printing_but_keep_their_lines():
    text = "    return x\n\x1b[31mred\x1b[0m\r\u202eevil\x00\tend"
    out = escape_text(text)
    assert "\n" in out and "\t" in out and "\x1b" not in out and "\r" not in out and "\u202e" not in out
    assert "\\x1b[31m" in out and "\\x0d" in out and "\\u202e" in out and "\\x00" in out
    assert escape_text("a" * 10, limit=4) == "aaaa..."


# -- when the probe runs and what the pruner sees ---------------------------------------------------


def _run(watch, steps, losses=None, total=None):
    control = SimpleNamespace(should_training_stop=False)
    for step in steps:
        if control.should_training_stop:
            break
        loss = (losses or {}).get(step, 1.0 - step / 1000)
        watch.on_evaluate(None, SimpleNamespace(global_step=step), control, metrics={"eval_loss": loss})
    return control


def test_the_probe_runs_every_task_eval_steps_and_at_the_end_with_its_own_history_rows():
    calls, rows = [], []
    probe = lambda step: calls.append(step) or score(step, [1, 0, 0, 1])  # noqa: E731
    watch = watch_training(record_row=rows.append, report=lambda s, v: False, total_steps=75, progress=False,
                       probe=probe, task_eval_steps=30)
    _run(watch, [0, 10, 20, 30, 40, 50, 60, 70, 75])
    assert calls == [30, 60, 75]  # not at step 0 (the base), then every 30 and the last step
    assert [r["step"] for r in rows] == [30, 60, 75]
    assert set(rows[0]) == {"step", "probe/pass@1", "probe/pass@1_se", "probe_s"} and rows[0]["probe/pass@1"] == 0.5


def test_the_probe_runs_at_the_first_evaluation_from_each_multiple():
    calls = []
    watch = watch_training(record_row=lambda r: None, report=lambda s, v: False, total_steps=100, progress=False,
                       probe=lambda step: calls.append(step) or score(step, [1]), task_eval_steps=25)
    _run(watch, [0, 15, 30, 45, 60, 75, 90, 100])
    assert calls == [30, 60, 75, 100]


def test_pruning_on_the_probe_reports_its_pass_at_1_only_where_it_ran():
    reported = []
    seq = {20: [1, 1, 0, 0], 40: [0, 0, 0, 0]}
    watch = watch_training(record_row=lambda r: None, report=lambda s, v: reported.append((s, v)) or v < 0.25,
                       total_steps=100, progress=False, probe=lambda step: score(step, seq[step]), task_eval_steps=20,
                       report_on="probe")
    control = _run(watch, [0, 10, 20, 30, 40, 50])
    assert reported == [(20, 0.5), (40, 0.0)]
    assert control.should_training_stop and watch.pruned_at == 40


def test_the_report_sign_follows_the_study_direction_and_the_watched_metric(compose):
    from harness.worker import _report_sign

    def sign(prune_on, direction):
        raw = compose(["+sweep=lora_rank", f"study.prune_on={prune_on}"])
        raw["study"]["objectives"][0]["direction"] = direction
        return _report_sign(study_config(raw))

    assert sign("eval_loss", "maximize") == -1.0 and sign("eval_loss", "minimize") == 1.0
    assert sign("probe", "maximize") == 1.0 and sign("probe", "minimize") == -1.0


def test_objective_split_validation_selects_on_the_probe_and_the_sweep_refuses_it_without_one(compose):
    from harness.sweep import validate

    study = study_config(compose(["+sweep=lora_rank", "study.objective_split=validation"]))
    assert [(o.metric, o.direction) for o in study.selection_objectives] == [("probe/pass@1", "maximize")]
    assert study.objectives[0].metric == "toy/pass@1"  # still scored and reported
    for override in ("study.prune_on=probe", "study.objective_split=validation"):
        with pytest.raises(ConfigError, match="needs the probe"):
            validate(compose(["+sweep=smoke", "train.task_eval_steps=null", override]), [])


# -- which checkpoint is kept -----------------------------------------------------------------------


def _model():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 1))
    model[1].weight.requires_grad_(False)  # frozen weights are neither copied nor restored
    return model


def _train_step(model, value: float) -> None:
    import torch

    with torch.no_grad():
        model[0].weight.fill_(value)


@pytest.mark.parametrize("in_memory_max_bytes", [2**30, 0])  # 0: the kept weights go to disk
def test_best_probe_keeps_an_earlier_checkpoint_when_the_last_is_worse(tmp_path, in_memory_max_bytes):
    model = _model()
    keeper = Keeper("best_probe", model, work_dir=tmp_path, in_memory_max_bytes=in_memory_max_bytes)
    sequence = [(50, 1.0, [0, 0, 0, 0, 1, 0, 0, 0]), (100, 2.0, [1, 1, 1, 0, 1, 0, 1, 0]), (150, 3.0, [1, 0, 1, 0, 0, 0, 1, 0])]
    for step, weight, passed in sequence:
        _train_step(model, weight)
        keeper.observe(step, eval_loss=1.0 / step, probe=score(step, passed))
    kept = keeper.finish(150)
    assert kept.step == 100 and kept.restored and kept.probe.pass_at_1 == 0.625
    assert float(model[0].weight[0, 0].detach()) == 2.0  # step 100's weights are back
    assert "step 100" in kept.reason and "did not beat it" in kept.reason
    assert not list(tmp_path.glob("*.safetensors"))  # the copy on disk is removed


def test_best_probe_switches_only_on_a_gain_larger_than_the_paired_standard_error(tmp_path):
    model = _model()
    keeper = Keeper("best_probe", model, work_dir=tmp_path)
    base = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert keeper.observe(50, probe=score(50, base))
    assert not keeper.observe(100, probe=score(100, [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]))  # one task more: noise
    assert not keeper.observe(150, probe=score(150, [0, 1, 1, 1, 0, 0, 0, 0, 0, 0]))  # +2 -1: within one se
    assert keeper.observe(200, probe=score(200, [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]))  # two more, none lost
    assert keeper.finish(200).restored is False


def test_best_eval_loss_and_last(tmp_path):
    model = _model()
    keeper = Keeper("best_eval_loss", model, work_dir=tmp_path)
    for step, loss in [(10, 0.9), (20, 0.5), (30, 0.7)]:
        _train_step(model, float(step))
        keeper.observe(step, eval_loss=loss)
    kept = keeper.finish(30)
    assert (kept.step, kept.eval_loss, float(model[0].weight[0, 0].detach())) == (20, 0.5, 20.0)
    last = Keeper("last", model, work_dir=tmp_path)
    last.observe(40, eval_loss=0.1, probe=score(40, [1, 0]))
    kept = last.finish(40)
    assert kept.step == 40 and not kept.restored and kept.probe.pass_at_1 == 0.5 and "keep=last" in kept.reason
