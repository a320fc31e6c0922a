"""The study report: one self-contained HTML page built from the trial records.

    python -m reports.build runs/<study> [--baseline DIR] [--out FILE]

Writes ``runs/<study>/report.html`` (also written at the end of every sweep): leaderboard,
quality versus cost, what mattered, training curves with their diagnosis, per-problem view,
sample generations and provenance. Records that cannot be read are skipped and named on the
page with the reason; nothing here imports training code (the importances use Optuna's
analysis on an in-memory study rebuilt from the records).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports import figures as fig
from reports.diagnosis import diagnose, read_history
from reports.leaderboard import build_leaderboard, trial_number
from reports.stats import compare_paired, mean_interval

__all__ = ["Report", "build_report", "collect", "main"]

TOP_TRIALS = 5  # trials in the per-problem matrix and the sample generations
SAMPLE_PROBLEMS = 4
MIN_TRIALS_FOR_IMPORTANCE = 20  # below this, importances are shown with a warning
MAX_TEXT = 4000  # characters of one prompt or completion kept on the page


@dataclass
class Report:
    path: Path
    skipped: list[dict[str, str]]
    seconds: float
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


def _read(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(object, None), or (None, why) for a missing, unreadable or malformed JSON object."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None, f"{path.name} is missing"
    except (OSError, ValueError) as e:
        return None, f"{path.name} is not valid JSON ({str(e)[:80]})"
    return (data, None) if isinstance(data, dict) else (None, f"{path.name} is not a JSON object")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict):
                    rows.append(row)
    except OSError:
        pass
    return rows


def _load_trials(study_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    trials, skipped = [], []
    for d in sorted(study_dir.glob("trial-*"), key=trial_number):
        manifest, why = _read(d / "manifest.json")
        if manifest is None:
            skipped.append({"record": d.name, "reason": why or "unreadable"})
            continue
        metrics, why = _read(d / "metrics.json")
        status = manifest.get("status") if isinstance(manifest.get("status"), str) else "unknown"
        if metrics is None:
            metrics = {}
            if status == "complete":
                skipped.append({"record": d.name, "reason": f"complete, but {why}: left out of the leaderboard's scores"})
        rows = read_history(d / "history.jsonl")
        diagnosis, evidence = metrics.get("diagnosis"), metrics.get("diagnosis_evidence")
        if not isinstance(diagnosis, str) and rows:  # records written before the diagnosis existed
            found = diagnose(rows)
            diagnosis, evidence = found.verdict, found.evidence
        trials.append({"trial": trial_number(d), "dir": d, "status": status, "reason": manifest.get("reason"),
                       "manifest": manifest, "metrics": {**metrics, "train_s": (manifest.get("timings_s") or {}).get("train")},
                       "history": rows, "diagnosis": diagnosis if isinstance(diagnosis, str) else None,
                       "diagnosis_evidence": evidence})
    return trials, skipped


def _finite(x: Any) -> Any:
    """JSON for the page: NaN/inf become strings (the browser's JSON has no NaN)."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _curves(trials: list[dict[str, Any]]) -> dict[int, dict[str, list]]:
    out: dict[int, dict[str, list]] = {}
    for t in trials:
        series: dict[str, list] = {}
        for row in t["history"]:
            if "train_runtime" in row:
                continue
            for m in (*fig.CURVE_METRICS, *fig.CURVE_ERRORS.values()):
                v = row.get(m)
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    series.setdefault(m, []).append([row["step"], v])
        if series:
            out[t["trial"]] = series
    return out


def _per_task(trial_dir: Path, benchmark: str) -> dict[str, float]:
    """Problem -> this trial's pass rate (c/n), from eval/<benchmark>/metrics.json."""
    metrics, _ = _read(trial_dir / "eval" / benchmark / "metrics.json")
    out = {}
    for task, v in ((metrics or {}).get("per_task") or {}).items():
        try:
            out[str(task)] = int(v["c"]) / int(v["n"])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            continue
    return out


def _problems(trials: list[dict[str, Any]], ranked: list[int], benchmark: str, baseline: Path | None) -> dict[str, Any]:
    """Which problems the top trials solve, and what the best gained and lost against a baseline."""
    by_number = {t["trial"]: t for t in trials}
    top = [n for n in ranked[:TOP_TRIALS]]
    rates = {n: _per_task(by_number[n]["dir"], benchmark) for n in top}
    top = [n for n in top if rates[n]]
    if not top:
        return {"benchmark": benchmark, "trials": [], "problems": [], "rates": [], "diff": None}
    problems = sorted(set().union(*(rates[n] for n in top)))
    matrix = {"benchmark": benchmark, "trials": top, "problems": problems,
              "rates": [[rates[n].get(p) for p in problems] for n in top]}
    best = top[0]
    if baseline is not None:
        base_rates, base_name = _per_task(baseline, benchmark), f"baseline {baseline.name}"
    elif len(top) > 1:
        base_rates, base_name = rates[top[1]], f"trial {top[1]} (second best; no base-model evaluation given)"
    else:
        base_rates, base_name = {}, None
    shared = sorted(set(rates[best]) & set(base_rates))
    diff = None
    if shared:
        c = compare_paired({p: [base_rates[p]] for p in shared}, {p: [rates[best][p]] for p in shared}, alpha=0.025)
        changes = [(rates[best][p] - base_rates[p], p) for p in shared]
        diff = {"best": best, "baseline": base_name, "n_problems": len(shared),
                "delta": -c.drop, "interval": [-c.upper, -c.lower],
                "gained": [{"task": p, "best": rates[best][p], "baseline": base_rates[p]} for d, p in sorted(changes, reverse=True) if d > 0],
                "lost": [{"task": p, "best": rates[best][p], "baseline": base_rates[p]} for d, p in sorted(changes) if d < 0]}
    matrix["diff"] = diff
    return matrix


def _clip(text: Any) -> str:
    text = str(text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"\n… [{len(text) - MAX_TEXT} more characters not shown]"


def _samples(trials: list[dict[str, Any]], problems: dict[str, Any]) -> list[dict[str, Any]]:
    """For a few problems (gained and lost first): prompt, and each top trial's first completion with its verdict."""
    by_number = {t["trial"]: t for t in trials}
    bench, top = problems["benchmark"], problems["trials"][:3]
    if not top:
        return []
    diff = problems.get("diff") or {}
    chosen: list[str] = []
    for p in [g["task"] for g in diff.get("gained", [])[:2]] + [g["task"] for g in diff.get("lost", [])[:2]] + problems["problems"]:
        if p not in chosen:
            chosen.append(p)
        if len(chosen) >= SAMPLE_PROBLEMS:
            break
    prompts = {r.get("task_id"): r.get("prompt") for r in _jsonl(by_number[top[0]]["dir"] / "eval" / bench / "prompts.jsonl")}
    results = {}
    for n in top:
        first = {}
        for r in _jsonl(by_number[n]["dir"] / "eval" / bench / "results.jsonl"):
            if r.get("task_id") in chosen and r.get("task_id") not in first:
                first[r["task_id"]] = r
        results[n] = first
    out = []
    for p in chosen:
        out.append({"task": p, "prompt": _clip(prompts[p]) if prompts.get(p) is not None else None,
                    "completions": [{"trial": n, "completion": _clip(results[n][p].get("completion", "")),
                                     "verdict": str(results[n][p].get("status") or results[n][p].get("result")),
                                     "detail": _clip(results[n][p].get("detail") or "")[:300]}
                                    for n in top if p in results[n]]})
    return out


def _provenance(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each fact with its value across trials; a fact that differs between trials lists every value."""
    def facts(m: dict[str, Any]) -> dict[str, Any]:
        git = m.get("git") or {}
        return {"model": m.get("model"), "model hash": m.get("model_hash"), "data hash": m.get("data_hash"),
                "template": m.get("template"), "git sha": git.get("sha"), "git dirty": git.get("dirty"),
                "sandbox": (m.get("sandbox") or {}).get("image"), "isolation": (m.get("sandbox") or {}).get("isolation"),
                "device": m.get("device"), "hardware": m.get("hardware"), **{f"version {k}": v for k, v in (m.get("versions") or {}).items()}}
    rows: dict[str, dict[str, list[int]]] = {}
    for t in trials:
        for k, v in facts(t["manifest"]).items():
            if v is None:
                continue
            rows.setdefault(k, {}).setdefault(json.dumps(v, sort_keys=True, default=str), []).append(t["trial"])
    return [{"fact": k, "values": [{"value": json.loads(v) if not isinstance(json.loads(v), (dict, list)) else v, "trials": ns}
                                  for v, ns in vals.items()]} for k, vals in rows.items()]


def _importances(study: dict[str, Any], trials: list[dict[str, Any]], objective: str, maximize: bool) -> tuple[dict[str, float], str | None]:
    from reports.importance import param_importances

    done = [t for t in trials if t["status"] == "complete" and isinstance(t["metrics"].get(objective), (int, float))
            and t["manifest"].get("params")]
    if len(done) < 3:
        return {}, f"{len(done)} complete trial(s) with parameters: too few to estimate importances"
    try:
        values = param_importances([(t["manifest"]["params"], float(t["metrics"][objective])) for t in done],
                                   specs=study.get("search_space_spec") or {}, maximize=maximize)
    except Exception as e:  # noqa: BLE001 - the report must still build; the page says why this plot is missing
        return {}, f"importances could not be computed: {type(e).__name__}: {e}"
    warning = None
    if len(done) < MIN_TRIALS_FOR_IMPORTANCE:
        warning = (f"only {len(done)} complete trials: importances from fewer than {MIN_TRIALS_FOR_IMPORTANCE} trials "
                   f"are noisy; read them as hints, not findings")
    return values, warning


def collect(study_dir: Path, *, baseline: Path | None = None) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[dict[str, str]]]:
    """(page data, figures, skipped records) of one study, from its records only."""
    study, why = _read(study_dir / "study.json")
    skipped: list[dict[str, str]] = []
    if study is None:
        skipped.append({"record": "study.json", "reason": f"{why}: objective taken as the leaderboard's default"})
        study = {}
    trials, skipped_trials = _load_trials(study_dir)
    skipped += skipped_trials
    board = build_leaderboard(study_dir)
    objective = board.objective or "eval_loss"
    direction = ((study.get("objectives") or [{}])[0]).get("direction", "maximize" if "/pass@" in objective else "minimize")
    maximize = direction == "maximize"
    by_number = {t["trial"]: t for t in trials}
    rows = []
    for r in board.rows:
        t = by_number.get(r["trial"])
        rows.append({**r, "diagnosis": r.get("diagnosis") or (t["diagnosis"] if t else None),
                     "diagnosis_evidence": t["diagnosis_evidence"] if t else None, "train_s": t["metrics"].get("train_s") if t else None})
    columns = [c for c in board.columns if c != "reason"] + ["train_s", "reason"]
    ranked = [r["trial"] for r in board.rows if r["status"] == "complete"]
    benchmark = objective.partition("/pass@")[0] if "/pass@" in objective else None
    if benchmark in (None, "probe"):  # eval loss or the validation probe: show the first benchmark any trial scored
        benchmark = next((k.partition("/pass@")[0] for t in trials for k in t["metrics"]
                          if "/pass@" in k and not k.startswith("probe/")), None)
    problems = _problems(trials, ranked, benchmark, baseline) if benchmark else {"trials": [], "problems": [], "diff": None}
    importances, importance_warning = _importances(study, trials, objective, maximize)
    curves = _curves(trials)
    figures = {f"pareto_{cost}": fig.pareto_figure(trials, objective=objective, maximize=maximize, cost=cost) for cost in fig.COST_AXES}
    figures.update(importance=fig.importance_figure(importances), history=fig.history_figure(trials, objective=objective, maximize=maximize),
                   problems=fig.problems_figure(problems) if benchmark else None,
                   **{f"curve_{m}": fig.curves_figure(curves, m) for m in fig.CURVE_METRICS})
    figures = {k: v for k, v in figures.items() if v is not None}
    complete = [t for t in trials if t["status"] == "complete"]
    objective_values = [t["metrics"][objective] for t in complete if isinstance(t["metrics"].get(objective), (int, float))]
    data = {
        "study": study.get("name") or study_dir.name, "objective": objective, "direction": direction,
        "built": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "counts": {s: sum(t["status"] == s for t in trials) for s in ("complete", "pruned", "failed", "running")},
        "objective_spread": mean_interval(objective_values) if len(objective_values) >= 2 else None,
        "columns": columns, "rows": rows, "skipped": skipped,
        "importance_warning": importance_warning, "importances": importances,
        "curves": {str(n): c for n, c in curves.items()},
        "diagnoses": {str(t["trial"]): {"verdict": t["diagnosis"], "evidence": t["diagnosis_evidence"]} for t in trials},
        "problems": problems, "samples": _samples(trials, problems) if benchmark else [],
        "provenance": _provenance(trials),
        "figures": figures,
    }
    return _finite(data), figures, skipped


def build_report(study_dir: Path, *, baseline: Path | None = None, out: Path | None = None) -> Report:
    """Write the report (default ``<study>/report.html``, atomically) and say what was skipped."""
    from common.files import write_text_atomic
    from reports.page import render

    started = time.perf_counter()
    if baseline is None and (study_dir / "base" / "eval").is_dir():
        baseline = study_dir / "base"
    data, figures, skipped = collect(study_dir, baseline=baseline)
    path = out or study_dir / "report.html"
    write_text_atomic(path, render(data))
    return Report(path=path, skipped=skipped, seconds=time.perf_counter() - started, figures=figures, data=data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.build", description="Write a study's self-contained HTML report.")
    parser.add_argument("study_dir", type=Path, help="runs/<study>")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="an evaluation record of the base model (python -m harness.evaluate); default: <study>/base if present")
    parser.add_argument("--out", type=Path, default=None, help="default: <study>/report.html")
    args = parser.parse_args(argv)
    if not args.study_dir.is_dir():
        print(f"error: {args.study_dir} is not a study folder (runs/<study>)", file=sys.stderr)
        return 2
    if args.baseline is not None and not args.baseline.is_dir():
        print(f"error: --baseline {args.baseline} is not a folder", file=sys.stderr)
        return 2
    report = build_report(args.study_dir, baseline=args.baseline, out=args.out)
    for s in report.skipped:
        print(f"skipped {s['record']}: {s['reason']}", file=sys.stderr)
    print(f"report: {report.path}  ({report.path.stat().st_size / 2**20:.1f} MiB, {report.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
