"""One trial, top to bottom: model -> data -> train -> evaluate -> record.

``run_trial`` takes a validated :class:`TrialConfig` and writes the trial record
(DESIGN.md) whatever happens: complete, pruned, failed (with the reason), or interrupted.
It knows nothing of Optuna; the sweep passes ``report(step, value) -> stop?`` and says what the
value is (``report_on``: the eval loss, or the probe's pass@1; docs/probe.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.config import ObjectiveSpec, TrialConfig
from harness.errors import TrialFailed
from harness.record import TrialRecord, write_json_atomic, write_text_atomic
from harness.threads import choose_threads
from harness.tracking import NullTracker, Tracker, open_tracker
from reports.diagnosis import diagnose, read_history

__all__ = ["Pruned", "evaluate_model", "objective_values", "run_trial"]


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


def run_trial(
    cfg: TrialConfig,
    *,
    resolved: dict[str, Any],
    study: str,
    number: int,
    trial_dir: Path,
    report: Callable[[int, float], bool] = lambda step, value: False,
    report_on: str = "eval_loss",
    params: dict[str, Any] | None = None,
    progress: bool = True,
    sandbox_labels: dict[str, str] | None = None,
    record_facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one trial and return its metrics. Raises Pruned, TrialFailed or KeyboardInterrupt (all recorded).

    ``sandbox_labels`` label the trial's sandbox containers (so a lost worker's can be reaped);
    ``record_facts`` go into the manifest as they are (worker, retry_of)."""
    record = TrialRecord(trial_dir, study=study, number=number, seed=cfg.seed)
    record.write_config(resolved)
    record.update(params=params or {}, method=cfg.method.name, model=cfg.model.name, **(record_facts or {}))
    tracker: Tracker = NullTracker()
    metrics: dict[str, Any] = {"method": cfg.method.name}
    try:
        with record.phase("tracking"):  # a tracker that cannot start leaves the trial untracked, with a warning
            tracker = _mirror(record, "opening the tracker", lambda: open_tracker(
                cfg.tracking, study=study, trial=number, config=resolved, study_dir=trial_dir.parent)) or tracker
        record.update(tracking_run=tracker.run_dir, tracking_run_id=tracker.run_id)
        launcher = resolved.get("launcher") or {}
        local_workers = int(launcher.get("n_workers", 1)) if launcher.get("backend", "local") == "local" else 1
        metrics.update(_train_and_evaluate(cfg, record=record, tracker=tracker, metrics=metrics, report=report,
                                           report_on=report_on, progress=progress, sandbox_labels=sandbox_labels or {},
                                           local_workers=local_workers))
    except Pruned as e:
        _close(record, tracker, metrics, "pruned", str(e))
        raise
    except (KeyboardInterrupt, SystemExit) as e:  # Ctrl-C, or a signal turned into an exit (preemption)
        _close(record, tracker, metrics, "failed", getattr(e, "reason", None) or "interrupted (SIGINT) during the trial")
        raise
    except Exception as e:  # noqa: BLE001 - every failure is recorded with its reason, then re-raised typed
        reason = str(e) if isinstance(e, TrialFailed) else f"{type(e).__name__}: {e}"
        (trial_dir / "error.txt").write_text(traceback.format_exc())
        _close(record, tracker, metrics, "failed", reason)
        raise TrialFailed(reason) from e
    _close(record, tracker, metrics, "complete", None)
    return metrics


def _close(record: TrialRecord, tracker, metrics: dict[str, Any], status: str, reason: str | None) -> None:
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


def _train_and_evaluate(cfg: TrialConfig, *, record: TrialRecord, tracker, metrics: dict, report, report_on: str,
                        progress: bool, sandbox_labels: dict[str, str], local_workers: int) -> dict[str, Any]:
    # One sandbox for the whole trial: the probe uses it during training, the final evaluation after.
    with contextlib.ExitStack() as stack:
        return _train_and_evaluate_in(cfg, record=record, tracker=tracker, metrics=metrics, report=report,
                                      report_on=report_on, progress=progress, sandbox_labels=sandbox_labels,
                                      local_workers=local_workers, stack=stack)


def _train_and_evaluate_in(cfg: TrialConfig, *, record: TrialRecord, tracker, metrics: dict, report, report_on: str,
                           progress: bool, sandbox_labels: dict[str, str], local_workers: int,
                           stack: contextlib.ExitStack) -> dict[str, Any]:
    with record.phase("setup"):  # heavy imports count as setup (paid once per process)
        from transformers import set_seed

        from harness.data import make_collator, prepare_data
        from harness.methods import apply_method, build_optimizer, model_load_kwargs, prepare_for_generation, trainer_callbacks
        from harness.models import load_model, load_tokenizer, resolve_model
        from harness.optimizers import check_available, resolve_optim
        from harness.suites import base_scores
        from harness.train import plan_steps, resolve_device, train

    # 1. model and tokenizer (a builtin model is built once and cached)
    with record.phase("setup"):
        set_seed(cfg.seed)
        import torch

        threads, why = choose_threads(cfg.train.num_threads, local_workers=local_workers)
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
    with record.phase("suites"):  # the base's suite scores, before any adapter (cached per model and suite)
        suite_base = base_scores(cfg, model=model, tokenizer=tokenizer, model_hash=record.manifest["model_hash"])

    # 2. data: formats, hygiene, masking; cached by content hash
    with record.phase("data"):
        data = prepare_data(
            cfg.data,
            tokenizer=tokenizer,
            eval_benchmarks=[b.name for b in cfg.eval.benchmarks],
            cache_dir=cfg.cache_dir / "data",
            seed=cfg.seed,
        )
        write_json_atomic(record.dir / "data_report.json", data.report)
        record.update(data_hash=data.data_hash, template=data.template)
        hygiene = data.report.get("hygiene") or {}
        metrics.update(
            train_examples=len(data.train),
            data_dropped=sum((hygiene.get("dropped") or {}).values()),
            data_dropped_by=dict(hygiene.get("dropped") or {}),  # per hygiene reason, mirrored to W&B's summary
        )

    # 3. train (the sandbox is opened first: the probe scores in it during training; execution time)
    with record.phase("execute"):
        sandbox = _open_sandbox(cfg, record=record, labels=sandbox_labels, stack=stack)
    with record.phase("train"):
        plan = plan_steps(cfg.train, n_examples=len(data.train))  # train.epochs become steps here
        record.update(train_plan={**plan.as_record(), "optim": optim, **({"optim_note": optim_note} if optim_note else {}),
                                  "gradient_checkpointing": cfg.train.gradient_checkpointing,
                                  "neftune_alpha": cfg.train.neftune_alpha})
        applied = apply_method(model, cfg.method, total_steps=plan.max_steps)
        record.update(method_info=applied.info)
        lr = _learning_rate(cfg)
        metrics.update(
            trainable_params=applied.trainable_params,
            total_params=applied.total_params,
            trainable_pct=round(100.0 * applied.trainable_params / max(1, applied.total_params), 4),
            learning_rate=lr,
        )

        def log_row(row: dict[str, Any]) -> None:
            record.append_history(row)
            _mirror(record, "a history row", lambda: tracker.log(row, step=row["step"]))

        probe = _make_probe(cfg, model=applied.model, tokenizer=tokenizer, template=data.template, sandbox=sandbox,
                            record=record) if cfg.train.task_eval_steps else None

        result = train(
            model=applied.model,
            tokenizer=tokenizer,
            train_data=data.train,
            validation_data=data.validation,
            collator=make_collator(tokenizer, packing=cfg.data.packing, pack_length=cfg.data.pack_length),
            cfg=cfg.train,
            learning_rate=lr,
            seed=cfg.seed,
            work_dir=record.dir / ".trainer",
            device=device,
            optim=optim,
            optimizer=build_optimizer(applied.model, cfg.method, learning_rate=lr, weight_decay=cfg.train.weight_decay,
                                      optim=optim, device=device),
            extra_callbacks=trainer_callbacks(applied),
            record_row=log_row,
            report=report,
            report_on=report_on,
            probe=probe,
            progress=progress,
        )
        metrics.update(
            train_steps=result.steps,
            train_loss=result.train_loss,
            eval_loss=result.eval_loss,
            tokens_per_s=round(result.tokens_per_s, 1),
            peak_memory_mb=result.peak_memory_mb,
        )
    # the probe's time is its own phase, not training's (benchmarks/trial_breakdown.py)
    record.timings["train"] = round(record.timings["train"] - result.probe_seconds, 4)
    record.timings["probe"] = result.probe_seconds
    record.update(stop_reason=result.stop_reason, kept_step=result.kept_step, keep_reason=result.keep_reason)
    metrics.update(kept_step=result.kept_step, keep_reason=result.keep_reason)
    if result.probe is not None:
        metrics.update({"probe/pass@1": result.probe.pass_at_1, "probe/pass@1_se": result.probe.se})
    if result.stop_reason == "pruned":
        raise Pruned(f"pruned at step {result.steps} (eval_loss {result.eval_loss:.4f})")

    with record.phase("record"):
        applied.model.save_pretrained(record.dir / "adapter")
        _mirror(record, "the adapter", lambda: tracker.log_adapter(
            record.dir / "adapter", name=f"{record.manifest['study']}-trial-{record.manifest['trial']}-adapter",
            upload=cfg.tracking.upload_adapter, metadata={"method": cfg.method.name, "model": cfg.model.name,
                                                          "model_hash": record.manifest.get("model_hash")}))

    # 4. evaluate: generate with the merged model where the method allows it, execute in the sandbox
    with record.phase("generate"):
        gen_model = prepare_for_generation(applied.model, cfg.method)
    metrics.update(evaluate_model(cfg, model=gen_model, tokenizer=tokenizer, template=data.template, record=record,
                                  progress=progress, sandbox_labels=sandbox_labels, suite_base=suite_base, sandbox=sandbox))
    with record.phase("record"):
        for spec in cfg.eval.benchmarks:
            _mirror(record, f"the {spec.name} tables", lambda: _log_eval_tables(tracker, record.dir / "eval" / spec.name, spec.name))
        if probe is not None:
            _mirror(record, "the probe samples", lambda: _log_probe_samples(tracker, record.dir / "probe_samples.jsonl"))
    return metrics


def _open_sandbox(cfg: TrialConfig, *, record: TrialRecord, labels: dict[str, str], stack: contextlib.ExitStack):
    from evaluators.sandbox import open_sandbox

    sandbox = stack.enter_context(open_sandbox(cfg.eval.sandbox, workers=cfg.eval.workers, labels=labels))
    record.update(sandbox={"backend": sandbox.name, "isolation": sandbox.isolation, "image": sandbox.image})
    return sandbox


def _render(template: str, tokenizer) -> Callable[[str], str]:
    """A task prompt as the model sees it: the training template, so an instruct-tuned adapter
    sees the format it learned."""
    from harness.data import format_prompt

    return lambda prompt: prompt if template == "none" else format_prompt(prompt, template, tokenizer=tokenizer)


def _make_probe(cfg: TrialConfig, *, model, tokenizer, template: str, sandbox, record: TrialRecord):
    """The probe (harness.probe) with the trial's generation settings and sandbox; each call's
    sample generations are appended to ``probe_samples.jsonl`` (raw; escaped where shown)."""
    from harness.probe import Probe

    probe = Probe(cfg.train.probe, model=model, tokenizer=tokenizer,
                  settings=cfg.eval.generation,
                  sandbox=sandbox, timeout_s=cfg.eval.timeout_s, format_prompt=_render(template, tokenizer),
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


def _log_eval_tables(tracker, eval_dir: Path, benchmark: str) -> None:
    """Per-problem results and each problem's first sample (prompt, completion, verdict) as tracker tables."""
    from harness.record import read_json

    per_task = read_json(eval_dir / "metrics.json").get("per_task") or {}
    tracker.log_table(f"{benchmark}/problems", columns=["task_id", "n", "c", "pass_rate"],
                      rows=[[t, v["n"], v["c"], v["c"] / v["n"] if v["n"] else None] for t, v in per_task.items()])
    prompts = {}
    for line in (eval_dir / "prompts.jsonl").read_text().splitlines():
        row = json.loads(line)
        prompts[row["task_id"]] = row["prompt"]
    firsts: dict[str, list] = {}
    for line in (eval_dir / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["task_id"] not in firsts:
            firsts[r["task_id"]] = [r["task_id"], prompts.get(r["task_id"]), r["completion"], r["status"], r.get("detail", "")]
    tracker.log_table(f"{benchmark}/samples", columns=["task_id", "prompt", "completion", "verdict", "detail"], rows=list(firsts.values()))



def evaluate_model(cfg: TrialConfig, *, model, tokenizer, template: str, record: TrialRecord, progress: bool,
                   sandbox_labels: dict[str, str] | None = None, suite_base: dict[str, Any] | None = None,
                   sandbox=None) -> dict[str, Any]:
    """Generate for every configured benchmark, score in one sandbox, write ``eval/<benchmark>/``;
    then the lm-eval suites with forgetting against ``suite_base`` (harness.suites), in ``eval/<suite>/``.
    Returns the headline pass@k and suite figures. Shared by trials and ``harness.evaluate``, so a
    saved adapter scored later goes through exactly the same prompts, generation, sandbox and suites.
    ``sandbox``: an open one to reuse (the trial's); None opens one for this evaluation."""
    from harness.suites import evaluate_suites

    from evaluators.benchmarks import load_benchmark
    from evaluators.evaluate import generate_samples, write_results
    from evaluators.scoring import score

    settings = cfg.eval.generation
    render_prompt = _render(template, tokenizer)
    metrics: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if sandbox is None:
            sandbox = _open_sandbox(cfg, record=record, labels=sandbox_labels or {}, stack=stack)
        for spec in cfg.eval.benchmarks:
            options = {"split": spec.split, "limit": spec.limit}
            if spec.prompt_format:
                options["prompt_format"] = spec.prompt_format
            benchmark = load_benchmark(spec.name, **options)
            with record.phase("generate"):
                samples = generate_samples(
                    model, tokenizer, benchmark, settings=settings, progress=progress,
                    format_prompt=render_prompt, add_special_tokens=template != "tokenizer",
                )
            with record.phase("execute"):
                scored = score(benchmark, samples, sandbox=sandbox, ks=cfg.eval.ks, timeout_s=cfg.eval.timeout_s, progress=progress)
            with record.phase("record"):
                rendered = "\x00".join(f"{t.task_id}\x01{render_prompt(t.prompt)}" for t in benchmark.tasks)
                bench_metrics = {
                    **scored.metrics,
                    "generation": settings.as_record(),
                    "prompt_template": template,
                    "prompts_sha256": hashlib.sha256(rendered.encode()).hexdigest(),  # the gate compares what the model saw
                    "higher_is_better": True,
                    "per_task": scored.per_task,
                }
                write_results(record.dir / "eval" / spec.name, samples=samples, results=scored.results, metrics=bench_metrics)
                # the rendered prompts, once per task: the report shows them beside the completions
                write_text_atomic(record.dir / "eval" / spec.name / "prompts.jsonl", "".join(
                    json.dumps({"task_id": t.task_id, "prompt": render_prompt(t.prompt)}) + "\n" for t in benchmark.tasks))
            for k in cfg.eval.ks:
                if f"pass@{k}" in scored.metrics:
                    metrics[f"{spec.name}/pass@{k}"] = scored.metrics[f"pass@{k}"]
    metrics.update(evaluate_suites(cfg, model=model, tokenizer=tokenizer, record=record, base=suite_base or {}))
    return metrics
