"""``python -m harness.gate --baseline DIR --candidate DIR``: may the candidate replace the baseline?

Reads records only (a trial directory or an evaluation directory each):
``eval/<benchmark>/results.jsonl`` (task_id, sample, passed | score) and
``eval/<benchmark>/metrics.json`` (generation settings, prompt template, benchmark metadata,
timeout, ``higher_is_better``). The statistics and the rule are ``reports.stats``
(docs/gate.md): paired over problems, one-sided, Holm across benchmarks.

Exit codes: 0 pass, 1 regression, 2 inconclusive, 3 not comparable or bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

__all__ = ["main", "gate", "load_evaluation", "NotComparable"]

EXIT = {"pass": 0, "regression": 1, "inconclusive": 2}
# generation settings that do not change what is measured (only how fast, or which draw)
NOT_COMPARED = {"seed", "batch_size", "engine"}


class NotComparable(Exception):
    """The records cannot be compared (differences named), or one is missing or malformed."""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise NotComparable(f"{path}: cannot read ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise NotComparable(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise NotComparable(f"{path}: expected a JSON object")
    return data


def load_evaluation(directory: Path) -> dict[str, dict[str, Any]]:
    """benchmark -> {"metrics": metrics.json, "outcomes": task_id -> [per-sample outcome]}."""
    evals = directory / "eval"
    if not evals.is_dir():
        raise NotComparable(f"{directory}: no eval/ folder (expected a trial or evaluation directory)")
    out: dict[str, dict[str, Any]] = {}
    for bench in sorted(p for p in evals.iterdir() if p.is_dir()):
        metrics = _read_json(bench / "metrics.json")
        outcomes: dict[str, list[float]] = {}
        results = bench / "results.jsonl"
        try:
            lines = results.read_text().splitlines()
        except OSError as e:
            raise NotComparable(f"{results}: cannot read ({e.strerror})") from None
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                task = row["task_id"]
                value = float(row["score"]) if "score" in row else float(bool(row["passed"]))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise NotComparable(f"{results}:{lineno}: malformed result row ({type(e).__name__}: {e}); "
                                    f"expected task_id and passed (or score)") from None
            outcomes.setdefault(str(task), []).append(value)
        if not outcomes:
            raise NotComparable(f"{results}: no result rows")
        out[bench.name] = {"metrics": metrics, "outcomes": outcomes}
    if not out:
        raise NotComparable(f"{evals}: no benchmark evaluated")
    return out


def differences(base: dict[str, Any], cand: dict[str, Any]) -> list[str]:
    """What makes two evaluations of one benchmark not like-for-like, named."""
    diffs = []
    tb, tc = set(base["outcomes"]), set(cand["outcomes"])
    if tb != tc:
        diffs.append(f"task sets differ ({len(tb - tc)} only in the baseline, {len(tc - tb)} only in the candidate)")
    mb, mc = base["metrics"], cand["metrics"]
    defaults = {"higher_is_better": True}  # records written before the key existed are pass/fail: higher is better
    for key in ("benchmark_meta", "prompt_template", "timeout_s", "higher_is_better"):
        vb, vc = mb.get(key, defaults.get(key)), mc.get(key, defaults.get(key))
        if vb != vc:
            diffs.append(f"{key}: {vb!r} vs {vc!r}")
    pb, pc = mb.get("prompts_sha256"), mc.get("prompts_sha256")
    if pb and pc and pb != pc:  # records from before the hash existed are compared by template and metadata only
        diffs.append(f"rendered prompts differ (prompts_sha256 {pb[:12]} vs {pc[:12]})")
    gb, gc = mb.get("generation") or {}, mc.get("generation") or {}
    for key in sorted((set(gb) | set(gc)) - NOT_COMPARED):
        if gb.get(key) != gc.get(key):
            diffs.append(f"generation.{key}: {gb.get(key)!r} vs {gc.get(key)!r}")
    return diffs


def _selection_note(candidate: Path, bench: str, metrics: dict[str, Any]) -> str | None:
    """A sweep's best trial was chosen on the split it reports: its score there is optimistic."""
    manifest = candidate / "manifest.json"
    try:
        m = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    if m.get("trial") is None or not m.get("study"):
        return None
    split = (metrics.get("benchmark_meta") or {}).get("split")
    return (f"{bench}: the candidate is trial {m['trial']} of study {m['study']!r}, chosen among trials scored on this "
            f"{'split (' + split + ')' if split else 'benchmark'}: its score is optimistic; gate a fresh evaluation "
            f"with a new sampling seed before release")


def gate(baseline: Path, candidate: Path, *, margin: float, min_effect: float, alpha: float) -> dict[str, Any]:
    from reports.stats import compare_paired, decide

    base, cand = load_evaluation(baseline), load_evaluation(candidate)
    if set(base) != set(cand):
        raise NotComparable(f"benchmarks differ: baseline {sorted(base)}, candidate {sorted(cand)}")
    problems = {b: differences(base[b], cand[b]) for b in base}
    problems = {b: d for b, d in problems.items() if d}
    if problems:
        raise NotComparable("; ".join(f"{b}: " + ", ".join(d) for b, d in problems.items()))
    comparisons = {
        b: compare_paired(base[b]["outcomes"], cand[b]["outcomes"], alpha=alpha, margin=margin,
                          higher_is_better=bool(base[b]["metrics"].get("higher_is_better", True)))
        for b in base
    }
    verdict = decide(comparisons, alpha=alpha, min_effect=min_effect)
    notes = [n for b in base if (n := _selection_note(candidate, b, cand[b]["metrics"]))]
    return {
        "verdict": verdict.decision,
        "reason": verdict.reason,
        "baseline": str(baseline),
        "candidate": str(candidate),
        "settings": {"margin": margin, "min_effect": min_effect, "alpha": alpha},
        "benchmarks": {b: {**{k: v for k, v in asdict(c).items() if k not in ("worse", "better")},
                           "holm_p": verdict.adjusted_p[b], "worse": c.worse, "better": c.better}
                       for b, c in comparisons.items()},
        "notes": notes,
    }


def to_markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = [
        f"# Gate: **{report['verdict']}**", "",
        f"Why: {report['reason']}.", "",
        f"Baseline `{report['baseline']}`, candidate `{report['candidate']}`; margin {100 * s['margin']:.1f} points, "
        f"smallest drop that matters {100 * s['min_effect']:.1f} points, alpha {s['alpha']} (one-sided bounds, Holm across benchmarks).", "",
        "| benchmark | problems | samples | baseline | candidate | drop | bounds on the drop | p (Holm) | worse / better | method |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for b, c in report["benchmarks"].items():
        lines.append(
            f"| {b} | {c['n_problems']} | {c['samples_candidate']} | {100 * c['baseline']:.1f} | {100 * c['candidate']:.1f} | "
            f"{100 * c['drop']:+.1f} | [{100 * c['lower']:.1f}, {100 * c['upper']:.1f}] | {c['p_value']:.3g} ({c['holm_p']:.3g}) | "
            f"{len(c['worse'])} / {len(c['better'])} | {c['method']} |")
    for b, c in report["benchmarks"].items():
        if c["worse"]:
            lines += ["", f"{b}, worse on: " + ", ".join(f"`{t}`" for t in c["worse"][:50]) + (" ..." if len(c["worse"]) > 50 else "")]
        if c["better"]:
            lines += ["", f"{b}, better on: " + ", ".join(f"`{t}`" for t in c["better"][:50]) + (" ..." if len(c["better"]) > 50 else "")]
    lines += [f"\nNote: {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.gate", description=__doc__.split("\n\n")[0],
                                     epilog="Exit codes: 0 pass, 1 regression, 2 inconclusive, 3 not comparable or bad input.")
    parser.add_argument("--baseline", type=Path, required=True, help="trial or evaluation directory of the released model")
    parser.add_argument("--candidate", type=Path, required=True, help="trial or evaluation directory of the candidate")
    parser.add_argument("--margin", type=float, default=0.0, help="drop tolerated before it is a regression (0.02 = 2 points)")
    parser.add_argument("--min-effect", type=float, default=0.05, help="smallest drop that matters (default 0.05 = 5 points)")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--out", type=Path, help="write OUT.md and OUT.json (default: the report on stdout)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse's usage error is 2, which here means "inconclusive"
        return 0 if e.code == 0 else 3
    if not 0 < args.alpha < 0.5 or args.margin < 0 or args.min_effect <= args.margin:
        print("error: need 0 < --alpha < 0.5, --margin >= 0 and --min-effect > --margin", file=sys.stderr)
        return 3
    try:
        report = gate(args.baseline, args.candidate, margin=args.margin, min_effect=args.min_effect, alpha=args.alpha)
    except NotComparable as e:
        print(f"not comparable: {e}", file=sys.stderr)
        return 3
    text = to_markdown(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"gate: {report['verdict']}: {report['reason']} (report: {args.out.with_suffix('.md')})")
    else:
        print(text)
    return EXIT[report["verdict"]]


if __name__ == "__main__":
    sys.exit(main())
