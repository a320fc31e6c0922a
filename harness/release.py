"""``python -m harness.release --trial DIR --baseline DIR [--out DIR] [--force --reason TEXT]``:
ship what passed the gate.

1. The gate (``harness.gate``) compares the trial with the released baseline.
2. On **pass** (or with ``--force --reason``, which the card records) the trial's adapter is
   copied to ``--out`` (default ``<trial>/release``) with ``README.md``, a model card: base
   model, method and hyperparameters, data hash and hygiene summary, evaluation settings, scores
   with 95% intervals over problems, the gate's verdict and report, provenance (git sha,
   package versions, hardware).
3. With W&B tracking on in the trial's config (``tracking=wandb``), the release is logged as a model artifact
   (offline mode works: the run lands in ``<out>/wandb/``).

Exit codes: 0 released; the gate's code (1 regression, 2 inconclusive, 3 not comparable or
bad input) when it refuses; 3 for a bad command line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "model_card", "release"]


def _scores(trial: Path) -> list[str]:
    """pass@1 (or the mean score) from the result rows, higher pass@k from the per-task counts; each with its interval."""
    from harness.gate import load_evaluation
    from reports.stats import mean_interval, per_problem_pass_at_k

    lines = []
    for bench, ev in load_evaluation(trial).items():
        rates = [sum(v) / len(v) for v in ev["outcomes"].values()]
        lo, hi = mean_interval(rates, lo=min(0.0, *rates), hi=max(1.0, *rates))
        name = "pass@1" if all(x in (0.0, 1.0) for v in ev["outcomes"].values() for x in v) else "mean score"
        lines.append(f"| {bench} | {name} | {sum(rates) / len(rates):.3f} | [{lo:.3f}, {hi:.3f}] | {len(rates)} |")
        m, per_task = ev["metrics"], ev["metrics"].get("per_task") or {}
        for key in sorted((k for k in m if k.startswith("pass@") and k != "pass@1"), key=lambda k: int(k.split("@")[1])):
            k = int(key.split("@")[1])
            values = [per_problem_pass_at_k(int(v["n"]), int(v["c"]), k) for v in per_task.values() if int(v["n"]) >= k]
            if values:
                lo, hi = mean_interval(values)
                lines.append(f"| {bench} | {key} | {m[key]:.3f} | [{lo:.3f}, {hi:.3f}] | {len(values)} |")
    return lines


def model_card(trial: Path, gate_report: dict[str, Any], *, forced_reason: str | None) -> str:
    import yaml

    from harness.record import read_json

    manifest = read_json(trial / "manifest.json")
    config = yaml.safe_load((trial / "config.yaml").read_text()) if (trial / "config.yaml").exists() else {}
    data_report = read_json(trial / "data_report.json")
    hygiene = data_report.get("hygiene") or {}
    method = config.get("method") or {}
    model = config.get("model") or {}
    ev = config.get("eval") or {}
    git = manifest.get("git") or {}
    lines = [
        f"# {model.get('name', 'model')} + {method.get('name', 'adapter')} (study {manifest.get('study')!r}, trial {manifest.get('trial')})",
        "",
        f"- **Base model**: `{model.get('path')}` ({manifest.get('model_hash')})",
        f"- **Method**: `{method.get('name')}`; hyperparameters: " + ", ".join(f"`{k}={v}`" for k, v in method.items() if k != "name"),
        "- **Training**: " + ", ".join(f"`{k}={v}`" for k, v in (config.get("train") or {}).items()),
        f"- **Data**: hash `{manifest.get('data_hash')}`, template `{manifest.get('template')}`; hygiene kept "
        f"{hygiene.get('kept', '?')}, dropped {json.dumps(hygiene.get('dropped') or {})}",
        f"- **Evaluation**: generation {json.dumps(ev.get('generation') or {})}, timeout {ev.get('timeout_s')} s, "
        f"sandbox {json.dumps((manifest.get('sandbox') or {}).get('backend'))}",
        "",
        "## Scores (95% intervals over problems)",
        "",
        "| benchmark | metric | score | interval | problems |",
        "|---|---|---:|---|---:|",
        *_scores(trial),
        "",
        "## Release gate",
        "",
        f"Verdict: **{gate_report['verdict']}** against `{gate_report['baseline']}`: {gate_report['reason']}.",
    ]
    if forced_reason:
        lines += ["", f"**Released despite the gate (--force)**, reason given: {forced_reason}"]
    lines += ["", *[f"Note: {n}" for n in gate_report.get("notes") or []]]
    versions = manifest.get("versions") or {}
    lines += [
        "",
        "## Provenance",
        "",
        f"- git `{git.get('sha')}`{' (dirty working tree)' if git.get('dirty') else ''}",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v),
        f"- hardware: {json.dumps(manifest.get('hardware') or {})}",
        f"- trial record: `{trial}`",
    ]
    return "\n".join(lines) + "\n"


def _log_artifact(trial: Path, out: Path, name: str) -> str | None:
    import yaml

    tracking = (yaml.safe_load((trial / "config.yaml").read_text()) or {}).get("tracking") or {}
    if tracking.get("backend", "none") != "wandb" or tracking.get("mode") == "disabled":
        return None  # the release artifact is W&B's; other backends keep none (docs/tracking.md)
    import os

    import wandb

    if tracking.get("mode", "offline") == "offline":
        os.environ.setdefault("WANDB_MODE", "offline")
    run = wandb.init(project=tracking.get("project", "harness"), entity=tracking.get("entity"), job_type="release",
                     name=f"release/{name}", dir=str(out), mode=tracking.get("mode", "offline"), reinit="create_new",
                     settings=wandb.Settings(silent=True, console="off", x_disable_stats=True, save_code=False))
    artifact = wandb.Artifact(name=name.replace("/", "-"), type="model", metadata={"trial": str(trial)})
    artifact.add_dir(str(out / "adapter"), name="adapter")
    artifact.add_file(str(out / "README.md"), name="README.md")
    run.log_artifact(artifact)
    run.finish()
    run_dir = Path(run.dir).parent
    if tracking.get("mode", "offline") == "offline":
        from harness.tracking.wandb_tracker import wait_written

        wait_written(run_dir)  # finish() returns before the offline file is complete: a reader right after must see it all
    return str(run_dir)


def release(trial: Path, baseline: Path, *, out: Path, force_reason: str | None, margin: float, min_effect: float,
            alpha: float) -> tuple[int, str]:
    from harness.gate import EXIT, NotComparable, gate, to_markdown

    try:
        report = gate(baseline, trial, margin=margin, min_effect=min_effect, alpha=alpha)
    except NotComparable as e:
        return 3, f"not comparable: {e}"
    code = EXIT[report["verdict"]]
    if code != 0 and force_reason is None:
        return code, f"refused: the gate says {report['verdict']}: {report['reason']} (--force --reason TEXT overrides, recorded in the card)"
    adapter = trial / "adapter"
    if not adapter.is_dir() or not any(p.suffix == ".safetensors" for p in adapter.iterdir()):
        return 3, f"{adapter}: no safetensors adapter to release"
    if out.exists():
        return 3, f"{out} exists: choose another --out (a release is never overwritten)"
    out.mkdir(parents=True)
    shutil.copytree(adapter, out / "adapter")
    (out / "README.md").write_text(model_card(trial, report, forced_reason=force_reason))
    (out / "gate.md").write_text(to_markdown(report))
    (out / "gate.json").write_text(json.dumps(report, indent=2) + "\n")
    from harness.record import read_json

    manifest = read_json(trial / "manifest.json")
    run = _log_artifact(trial, out, f"{manifest.get('study')}-trial-{manifest.get('trial')}")
    where = f"; W&B artifact logged ({run})" if run else ""
    return 0, f"released {trial} to {out}/ (gate: {report['verdict']}{', forced' if force_reason else ''}){where}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.release", description=__doc__.split("\n\n")[0],
                                     epilog="Exit codes: 0 released; 1 regression, 2 inconclusive, 3 not comparable or bad input.")
    parser.add_argument("--trial", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--force", action="store_true", help="release although the gate did not pass (needs --reason)")
    parser.add_argument("--reason", help="why, recorded in the model card")
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--min-effect", type=float, default=0.05)
    parser.add_argument("--alpha", type=float, default=0.05)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return 0 if e.code == 0 else 3
    if args.force != bool(args.reason):
        print("error: --force needs --reason TEXT (and --reason only goes with --force)", file=sys.stderr)
        return 3
    code, message = release(args.trial, args.baseline, out=args.out or args.trial / "release",
                            force_reason=args.reason if args.force else None,
                            margin=args.margin, min_effect=args.min_effect, alpha=args.alpha)
    print(message, file=sys.stdout if code == 0 else sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
