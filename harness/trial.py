"""One trial, top to bottom: model -> data -> train -> evaluate -> record.

``run_trial`` takes a validated :class:`TrialConfig` and writes the trial record
(DESIGN.md) whatever happens: complete, pruned, failed (with the reason), or interrupted.
It knows nothing of Optuna; the sweep passes ``report(step, value) -> stop?`` and says what the
value is (``report_on``: the eval loss, or the probe's pass@1; docs/probe.md).
"""

from __future__ import annotations

import contextlib
import json
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from common.files import write_json_atomic
from harness.config import TrialConfig
from harness.errors import TrialFailed
from harness.evaluation import evaluate_model, log_eval_tables, open_trial_sandbox, prompt_renderer
from harness.record import TrialRecord
from harness.study_config import ObjectiveSpec
from harness.threads import choose_threads
from harness.tracking import NullTracker, Tracker, open_tracker
from harness.train import never_stop
from reports.diagnosis import diagnose, read_history

if TYPE_CHECKING:
    from harness.data import PreparedData

__all__ = ["Pruned", "TrialRun", "evaluate_model", "objective_values", "run_trial"]


class Pruned(Exception):
    """The pruner stopped this trial; its record says so."""


# Metrics every trial records besides pass@k; objectives may name any of them.
HEADLINE_METRICS = ("eval_loss", "train_loss", "tokens_per_s", "peak_memory_mb", "trainable_params", "wall_time_s")


def objective_values(metrics: dict[str, Any], objectives: Sequence[ObjectiveSpec]) -> list[float]:
    values = []
    for o in objectives:
        value = metrics.get(o.metric)
        if value is None:
            raise TrialFailed(f"objective metric {o.metric!r} was not produced by this trial")
        values.append(float(value))
    return values


def _learning_rate(cfg: TrialConfig) -> float:
    if cfg.train.learning_rate is not None:
        return cfg.train.learning_rate
    return float(getattr(cfg.method, "default_learning_rate", None) or 1e-3)


@dataclass(frozen=True)
class TrialRun:
    """Who a trial is and what the worker tells it: ``report(step, value) -> stop?`` is the pruner's
    hook, given the eval loss or the probe's pass@1 (``report_on``); ``sandbox_labels`` label the
    trial's sandbox containers (so a lost worker's can be reaped); ``record_facts`` go into the
    manifest as they are (worker, retry_of); ``local_workers`` share this machine's cores."""

    study: str
    number: int
    dir: Path
    params: dict[str, Any] = field(default_factory=dict)
    report: Callable[[int, float], bool] = never_stop
    report_on: Literal["eval_loss", "probe"] = "eval_loss"
    progress: bool = True
    sandbox_labels: dict[str, str] = field(default_factory=dict)
    record_facts: dict[str, Any] = field(default_factory=dict)
    local_workers: int = 1


def run_trial(cfg: TrialConfig, *, resolved: dict[str, Any], run: TrialRun) -> dict[str, Any]:
    """Run one trial and return its metrics. Raises Pruned, TrialFailed or KeyboardInterrupt (all recorded)."""
    record = TrialRecord(run.dir, study=run.study, number=run.number, seed=cfg.seed)
    record.write_config(resolved)
    record.update(params=run.params, method=cfg.method.name, model=cfg.model.name, **run.record_facts)
    tracker: Tracker = NullTracker()
    metrics: dict[str, Any] = {"method": cfg.method.name}
    try:
        with record.phase("tracking"):  # a tracker that cannot start leaves the trial untracked, with a warning
            tracker = _mirror(record, "opening the tracker", lambda: open_tracker(
                cfg.tracking, study=run.study, trial=run.number, config=resolved, study_dir=run.dir.parent)) or tracker
        record.update(tracking_run=tracker.run_dir, tracking_run_id=tracker.run_id)
        # One sandbox for the whole trial: the probe uses it during training, the final evaluation after.
        with contextlib.ExitStack() as stack:
            stages = _Stages(cfg, run=run, record=record, tracker=tracker, metrics=metrics, stack=stack)
            stages.run()
    except Pruned as e:
        _close(record, tracker, metrics, "pruned", str(e))
        raise
    except (KeyboardInterrupt, SystemExit) as e:  # Ctrl-C, or a signal turned into an exit (preemption)
        _close(record, tracker, metrics, "failed", getattr(e, "reason", None) or "interrupted (SIGINT) during the trial")
        raise
    except Exception as e:  # noqa: BLE001 - every failure is recorded with its reason, then re-raised typed
        reason = str(e) if isinstance(e, TrialFailed) else f"{type(e).__name__}: {e}"
        (run.dir / "error.txt").write_text(traceback.format_exc())
        _close(record, tracker, metrics, "failed", reason)
        raise TrialFailed(reason) from e
    _close(record, tracker, metrics, "complete", None)
    return metrics


def _close(record: TrialRecord, tracker: Tracker, metrics: dict[str, Any], status: str, reason: str | None) -> None:
    with record.phase("record"):
        metrics["status"] = status
        rows = read_history(record.dir / "history.jsonl")
        if rows:  # the verdict on the training curves, with its evidence (reports.diagnosis; docs/report.md)
            metrics.update(diagnose(rows).as_record())
        metrics["wall_time_s"] = round(sum(v for k, v in record.timings.items() if k != "total"), 3)
        record.write_metrics(metrics)
    # The record first: a preempted worker may be killed soon after, and then its record must already say why.
    record.finish(status, reason)
    _mirror(record, "finishing the tracker", lambda: tracker.finish(summary=metrics, status=status))


@dataclass
class _Loaded:
    """What setup leaves for the later stages."""

    model: Any
    tokenizer: Any
    device: str
    optim: str
    optim_note: str | None
    suite_base: dict[str, Any]


class _Stages:
    """The trial's stages in order: setup -> data -> train -> evaluate, each a method that fits on a
    screen, writing into one record and one metrics dict (``run`` raises Pruned after training)."""

    def __init__(self, cfg: TrialConfig, *, run: TrialRun, record: TrialRecord, tracker: Tracker, metrics: dict[str, Any],
                 stack: contextlib.ExitStack) -> None:
        self.cfg, self.trial, self.record, self.tracker, self.metrics, self.stack = cfg, run, record, tracker, metrics, stack

    def run(self) -> None:
        with self.record.phase("setup"):  # heavy imports count as setup (paid once per process)
            import transformers  # noqa: F401

            import harness.data  # noqa: F401
            import harness.methods  # noqa: F401
            import harness.models  # noqa: F401
            import harness.optimizers  # noqa: F401
            import harness.suites  # noqa: F401
            import harness.train  # noqa: F401
        loaded = self.setup()
        data = self.data(loaded)
        with self.record.phase("execute"):  # opened before training: the probe scores in it (execution time)
            sandbox = open_trial_sandbox(self.cfg, record=self.record, labels=self.trial.sandbox_labels, stack=self.stack)
        model, probe = self.train(loaded, data, sandbox=sandbox)
        self.evaluate(loaded, model, template=data.template, sandbox=sandbox, probe=probe is not None)

    def setup(self) -> _Loaded:
        """The model and tokenizer (a builtin model is built once and cached), on the device, with threads chosen;
        then the base model's suite scores, before any adapter (cached per model and suite)."""
        from transformers import set_seed

        from harness.methods import model_load_kwargs
        from harness.models import load_model, load_tokenizer, resolve_model
        from harness.optimizers import check_available, resolve_optim
        from harness.suites import base_scores
        from harness.train import resolve_device

        cfg, record = self.cfg, self.record
        with record.phase("setup"):
            set_seed(cfg.seed)
            import torch

            threads, why = choose_threads(cfg.train.num_threads, local_workers=self.trial.local_workers)
            torch.set_num_threads(threads)
            record.update(threads=threads, threads_from=why)
            device = resolve_device(cfg.train.device)
            # What cannot run on this device fails here, clearly, before any model is loaded: qlora without a 4-bit
            # backend, an optimizer without its package or CUDA, FlashAttention-2 without either (load_model).
            load_kwargs = model_load_kwargs(cfg.method, device=device)
            optim, optim_note = resolve_optim(cfg.train.optim, cfg.method.default_optim, device=device)
            check_available(optim, device=device, key="train.optim" if cfg.train.optim else "method.default_optim")
            path, model_hash = resolve_model(cfg.model, cache_dir=cfg.cache_dir)
            tokenizer = load_tokenizer(path, trust_remote_code=cfg.model.trust_remote_code)
            model = load_model(path, cfg=cfg.model, device=device, extra=load_kwargs)
            revision = getattr(model.config, "_commit_hash", None)
            record.update(model_hash=model_hash + (f"@{revision}" if revision else ""), model_path=path, device=device,
                          attn_implementation=getattr(model.config, "_attn_implementation", None))
        with record.phase("suites"):
            suite_base = base_scores(cfg, model=model, tokenizer=tokenizer, model_hash=record.manifest["model_hash"])
        return _Loaded(model=model, tokenizer=tokenizer, device=device, optim=optim, optim_note=optim_note, suite_base=suite_base)

    def data(self, loaded: _Loaded) -> PreparedData:
        """Formats, hygiene, masking; cached by content hash. The hygiene report goes into the record."""
        from harness.data import prepare_data

        cfg, record = self.cfg, self.record
        with record.phase("data"):
            data = prepare_data(cfg.data, tokenizer=loaded.tokenizer, eval_benchmarks=[b.name for b in cfg.eval.benchmarks],
                                cache_dir=cfg.cache_dir / "data", seed=cfg.seed)
            write_json_atomic(record.dir / "data_report.json", data.report)
            record.update(data_hash=data.data_hash, template=data.template)
            dropped = dict((data.report.get("hygiene") or {}).get("dropped") or {})
            # per hygiene reason, mirrored to W&B's summary
            self.metrics.update(train_examples=len(data.train), data_dropped=sum(dropped.values()), data_dropped_by=dropped)
        return data

    def train(self, loaded: _Loaded, data: PreparedData, *, sandbox: Any) -> tuple[Any, Any]:
        """The method applied and trained (harness.train); returns the trained model and the probe (or None).
        Raises Pruned when the pruner stopped it."""
        from harness.data import make_collator
        from harness.methods import apply_method, build_optimizer, trainer_callbacks
        from harness.train import Optimization, TrainData, TrainHooks, plan_steps, train

        cfg, record, metrics = self.cfg, self.record, self.metrics
        with record.phase("train"):
            plan = plan_steps(cfg.train, n_examples=len(data.train))  # train.epochs become steps here
            note = {"optim_note": loaded.optim_note} if loaded.optim_note else {}
            record.update(train_plan={**plan.as_record(), "optim": loaded.optim, **note,
                                      "gradient_checkpointing": cfg.train.gradient_checkpointing,
                                      "neftune_alpha": cfg.train.neftune_alpha})
            applied = apply_method(loaded.model, cfg.method, total_steps=plan.max_steps)
            record.update(method_info=applied.info)
            lr = _learning_rate(cfg)
            metrics.update(trainable_params=applied.trainable_params, total_params=applied.total_params,
                           trainable_pct=round(100.0 * applied.trainable_params / max(1, applied.total_params), 4),
                           learning_rate=lr)
            probe = _make_probe(cfg, model=applied.model, tokenizer=loaded.tokenizer, template=data.template, sandbox=sandbox,
                                record=record) if cfg.train.task_eval_steps else None
            optimizer = build_optimizer(applied.model, cfg.method, learning_rate=lr, weight_decay=cfg.train.weight_decay,
                                        optim=loaded.optim, device=loaded.device)
            result = train(
                model=applied.model,
                data=TrainData(train=data.train, validation=data.validation,
                               collator=make_collator(loaded.tokenizer, packing=cfg.data.packing, pack_length=cfg.data.pack_length)),
                cfg=cfg.train,
                optimization=Optimization(learning_rate=lr, optim=loaded.optim, optimizer=optimizer,
                                          callbacks=tuple(trainer_callbacks(applied))),
                seed=cfg.seed,
                work_dir=record.dir / ".trainer",
                device=loaded.device,
                hooks=TrainHooks(record_row=self._log_row, report=self.trial.report, report_on=self.trial.report_on,
                                 probe=probe, progress=self.trial.progress),
            )
            metrics.update(train_steps=result.steps, train_loss=result.train_loss, eval_loss=result.eval_loss,
                           tokens_per_s=round(result.tokens_per_s, 1), peak_memory_mb=result.peak_memory_mb)
        # the probe's time is its own phase, not training's (perf/trial_breakdown.py)
        record.timings["train"] = round(record.timings["train"] - result.probe_seconds, 4)
        record.timings["probe"] = result.probe_seconds
        record.update(stop_reason=result.stop_reason, kept_step=result.kept_step, keep_reason=result.keep_reason)
        metrics.update(kept_step=result.kept_step, keep_reason=result.keep_reason)
        if result.probe is not None:
            metrics.update({"probe/pass@1": result.probe.pass_at_1, "probe/pass@1_se": result.probe.se})
        if result.stop_reason == "pruned":
            raise Pruned(f"pruned at step {result.steps} (eval_loss {result.eval_loss:.4f})")
        return applied.model, probe

    def evaluate(self, loaded: _Loaded, model: Any, *, template: str, sandbox: Any, probe: bool) -> None:
        """The adapter saved (and mirrored), then the evaluate stage (harness.evaluation) on the model merged
        where the method allows it; the tracker gets the per-problem tables and the probe's samples."""
        from harness.methods import prepare_for_generation

        cfg, record, tracker = self.cfg, self.record, self.tracker
        with record.phase("record"):
            model.save_pretrained(record.dir / "adapter")
            _mirror(record, "the adapter", lambda: tracker.log_adapter(
                record.dir / "adapter", name=f"{record.manifest['study']}-trial-{record.manifest['trial']}-adapter",
                upload=cfg.tracking.upload_adapter, metadata={"method": cfg.method.name, "model": cfg.model.name,
                                                              "model_hash": record.manifest.get("model_hash")}))
        with record.phase("generate"):
            gen_model = prepare_for_generation(model, cfg.method)
        self.metrics.update(evaluate_model(cfg, model=gen_model, tokenizer=loaded.tokenizer, template=template, record=record,
                                           progress=self.trial.progress, sandbox_labels=self.trial.sandbox_labels,
                                           suite_base=loaded.suite_base, sandbox=sandbox))
        with record.phase("record"):
            for spec in cfg.eval.benchmarks:
                _mirror(record, f"the {spec.name} tables", partial(log_eval_tables, tracker, record.dir / "eval" / spec.name, spec.name))
            if probe:
                _mirror(record, "the probe samples", lambda: _log_probe_samples(tracker, record.dir / "probe_samples.jsonl"))

    def _log_row(self, row: dict[str, Any]) -> None:
        self.record.append_history(row)
        _mirror(self.record, "a history row", lambda: self.tracker.log(row, step=row["step"]))


def _make_probe(cfg: TrialConfig, *, model, tokenizer, template: str, sandbox, record: TrialRecord):
    """The probe (harness.probe) with the trial's generation settings and sandbox; each call's
    sample generations are appended to ``probe_samples.jsonl`` (raw; escaped where shown)."""
    from harness.probe import Probe

    probe = Probe(cfg.train.probe, model=model, tokenizer=tokenizer,
                  settings=cfg.eval.generation,
                  sandbox=sandbox, timeout_s=cfg.eval.timeout_s, format_prompt=prompt_renderer(template, tokenizer),
                  add_special_tokens=template != "tokenizer")
    record.update(probe=probe.description)
    (record.dir / "probe_samples.jsonl").unlink(missing_ok=True)

    def run(step: int):
        scored = probe(step)
        with open(record.dir / "probe_samples.jsonl", "a") as f:
            f.writelines(json.dumps(s) + "\n" for s in scored.samples)
        return scored

    return run


def _log_probe_samples(tracker, path: Path) -> None:
    """The probe's sample generations at every step, escaped, as one tracker table."""
    from harness.probe import escape_text

    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    tracker.log_table("probe/samples", columns=["step", "task_id", "prompt", "completion", "verdict"],
                      rows=[[r["step"], r["task_id"], escape_text(r["prompt"]), escape_text(r["completion"]), r["status"]] for r in rows])


def _mirror(record: TrialRecord, what: str, log: Callable[[], Any]) -> Any:
    """Send something to the tracker and return what it returns; a tracker failure is noted in the
    manifest (each distinct warning once: a broken tracker fails every row alike) and returns None,
    never fails the trial."""
    try:
        return log()
    except Exception as e:  # noqa: BLE001 - the record on disk is the truth; the tracker only mirrors it
        warnings, warning = record.manifest.get("tracking_warnings", []), f"{what}: {type(e).__name__}: {e}"
        if warning not in warnings:
            record.update(tracking_warnings=[*warnings, warning])
