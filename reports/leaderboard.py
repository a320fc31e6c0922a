"""Leaderboard of a study, built from its trial records only.

    python -m reports.leaderboard runs/<study>

Ranks complete trials by the study's first objective (then pruned, then failed trials,
which keep their reasons), and writes ``leaderboard.md`` and ``leaderboard.csv``.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.files import read_json, write_text_atomic

__all__ = ["Leaderboard", "build_leaderboard", "load_trials", "trial_number"]

from reports.stats import compare_paired, mean_interval, per_problem_pass_at_k  # noqa: E402 (light: scipy is imported lazily)

STATUS_ORDER = {"complete": 0, "pruned": 1, "failed": 2, "running": 3}
METRIC_COLUMNS = ("eval_loss", "trainable_params", "trainable_pct", "peak_memory_mb", "tokens_per_s", "wall_time_s")


def trial_number(trial_dir: Path) -> int:
    """The number in a ``trial-<n>`` folder's name (-1 for a name that has none): the order of a study's records."""
    tail = trial_dir.name.partition("-")[2]
    return int(tail) if tail.isdigit() else -1


def load_trials(study_dir: Path) -> list[dict[str, Any]]:
    """One dict per trial folder: manifest, metrics and params merged."""
    trials = []
    for d in sorted(study_dir.glob("trial-*"), key=trial_number):
        manifest = read_json(d / "manifest.json")
        if not manifest:
            continue
        trials.append({"trial": manifest.get("trial"), "manifest": manifest, "metrics": read_json(d / "metrics.json"), "dir": d})
    return trials


@dataclass
class Leaderboard:
    columns: list[str]
    rows: list[dict[str, Any]]
    objective: str | None

    def to_text(self) -> str:
        cells = [[_cell(r.get(c)) for c in self.columns] for r in self.rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(self.columns)]
        line = "  ".join(c.ljust(w) for c, w in zip(self.columns, widths))
        out = [line, "  ".join("-" * w for w in widths)]
        out += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
        return "\n".join(out)

    def to_markdown(self) -> str:
        out = ["| " + " | ".join(self.columns) + " |", "|" + "|".join("---" for _ in self.columns) + "|"]
        out += ["| " + " | ".join(_cell(r.get(c)).replace("|", "\\|") for c in self.columns) + " |" for r in self.rows]
        return "\n".join(out) + "\n"

    def write(self, study_dir: Path) -> list[Path]:
        md, csv_path = study_dir / "leaderboard.md", study_dir / "leaderboard.csv"
        title = (f"# Leaderboard: {study_dir.name}\n\nRanked by `{self.objective}`. Built from the trial records in this folder.\n"
                 f"Intervals are 95% over problems; `vs #1` is the paired difference from the best trial in points "
                 f"with its 95% interval, `~` where the two cannot be told apart.\n\n")
        write_text_atomic(md, title + self.to_markdown())
        buffer = io.StringIO(newline="")  # the csv module's \r\n line ends, written as they are
        writer = csv.DictWriter(buffer, fieldnames=self.columns, extrasaction="ignore")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({c: r.get(c, "") for c in self.columns})
        write_text_atomic(csv_path, buffer.getvalue())
        return [md, csv_path]


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 and v != 0 else f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def build_leaderboard(study_dir: Path) -> Leaderboard:
    study = read_json(study_dir / "study.json")
    objectives = study.get("objectives") or [{"metric": "eval_loss", "direction": "minimize"}]
    objective, direction = objectives[0]["metric"], objectives[0].get("direction", "maximize")
    trials = load_trials(study_dir)
    param_keys: list[str] = []
    pass_keys: list[str] = []
    forget_keys: list[str] = []
    rows = []
    for t in trials:
        m, man = t["metrics"], t["manifest"]
        params = man.get("params") or {}
        for k in params:
            if k not in param_keys:
                param_keys.append(k)
        for k in m:
            if "/pass@" in k and not k.endswith("_se") and k not in pass_keys:  # probe/pass@1_se is its error, not a score
                pass_keys.append(k)
        row = {
            "rank": None,
            "trial": t["trial"],
            "status": man.get("status"),
            "diagnosis": m.get("diagnosis"),
            "method": m.get("method") or man.get("method"),
            **{f"param:{k}": v for k, v in params.items()},
            **{k: m.get(k) for k in METRIC_COLUMNS},
            "reason": man.get("reason") or "",
        }
        row.update({k: m.get(k) for k in m if "/pass@" in k and not k.endswith("_se")})
        for k in m:  # suites: forgetting against the base with its interval (harness.suites)
            if k.startswith("forgetting/") and not k.endswith(" 95% CI"):
                if k not in forget_keys:
                    forget_keys.append(k)
                ci = m.get(f"{k} 95% CI")
                row[k] = m[k]
                row[f"{k} 95% CI"] = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if isinstance(ci, list) and len(ci) == 2 else None
        rows.append(row)
    sign = -1.0 if direction == "maximize" else 1.0

    def key(r: dict[str, Any]):
        value = r.get(objective)
        return (STATUS_ORDER.get(r["status"], 9), 0 if value is not None else 1, sign * value if value is not None else 0.0, r["trial"])

    rows.sort(key=key)
    ranked = [r for r in rows if r["status"] == "complete" and r.get(objective) is not None]  # no score, no rank
    for r in rows:
        r["rank"] = None
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
    per_problem = {r["trial"]: _per_problem(study_dir / f"trial-{r['trial']}", pass_keys) for r in rows}
    for r in rows:
        for k in pass_keys:
            values = per_problem[r["trial"]].get(k)
            if values:
                lo, hi = mean_interval(list(values.values()))
                r[f"{k} 95% CI"] = f"[{lo:.3f}, {hi:.3f}]"
    vs_best = _versus_best(rows, per_problem, objective, direction) if objective in pass_keys else False
    columns = ["rank", "trial", "status", "diagnosis", "method", *[f"param:{k}" for k in param_keys]]
    for k in sorted(pass_keys):
        columns += [k, f"{k} 95% CI"]
    columns += ["vs #1"] if vs_best else []
    for k in forget_keys:
        columns += [k, f"{k} 95% CI"]
    columns += [*METRIC_COLUMNS, "reason"]
    return Leaderboard(columns=columns, rows=rows, objective=objective)


def _per_problem(trial_dir: Path, pass_keys: list[str]) -> dict[str, dict[str, float]]:
    """metric ("toy/pass@1") -> task -> that problem's pass@k estimate, from eval/<bench>/metrics.json."""
    out: dict[str, dict[str, float]] = {}
    for key in pass_keys:
        bench, _, at = key.partition("/pass@")
        per_task = read_json(trial_dir / "eval" / bench / "metrics.json").get("per_task") or {}
        try:
            k = int(at)
            out[key] = {t: per_problem_pass_at_k(int(v["n"]), int(v["c"]), k) for t, v in per_task.items() if int(v["n"]) >= k}
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _versus_best(rows: list[dict[str, Any]], per_problem: dict, objective: str, direction: str) -> bool:
    """Each complete trial's difference from #1 on the objective, paired over problems, with a 95%
    interval; "~" marks a trial that cannot be told apart from #1."""
    complete = [r for r in rows if r["status"] == "complete" and per_problem[r["trial"]].get(objective)]
    if len(complete) < 2:
        return False
    best = complete[0]
    best_values = per_problem[best["trial"]][objective]
    best["vs #1"] = "#1"
    for r in complete[1:]:
        values = per_problem[r["trial"]][objective]
        if set(values) != set(best_values):
            r["vs #1"] = "other problems"
            continue
        c = compare_paired({t: [v] for t, v in best_values.items()}, {t: [v] for t, v in values.items()},
                           alpha=0.025, higher_is_better=direction == "maximize")
        tie = " ~" if c.lower <= 0 <= c.upper else ""
        r["vs #1"] = f"{-100 * c.drop:+.1f} [{-100 * c.upper:+.1f}, {-100 * c.lower:+.1f}]{tie}"
    return True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m reports.leaderboard runs/<study>", file=sys.stderr)
        return 2
    board = build_leaderboard(Path(argv[0]))
    print(board.to_text())
    for p in board.write(Path(argv[0])):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
