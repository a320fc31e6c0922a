"""Per-trial time breakdown of a finished study, from its records and its Optuna storage.

    python perf/trial_breakdown.py runs/<study>

For every trial: the recorded phases (setup = imports + model load, tracking, suites (the base's
scores, cached), data, train, probe (in-training evaluation, docs/probe.md),
generate, execute, record) and the orchestration overhead = Optuna's trial duration
(ask -> tell) minus every recorded phase: config composition, sampling, storage round
trips, the per-trial summary line. Prints a Markdown table for docs/sweeps.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PHASES = ("setup", "tracking", "suites", "data", "train", "probe", "generate", "execute", "record")


def main(study_dir: Path) -> int:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study_info = json.loads((study_dir / "study.json").read_text())
    backend = study_info["storage"]["backend"]
    url = f"sqlite:///{(study_dir / 'optuna.db').resolve()}" if backend == "sqlite" else study_info["storage"]["url"]
    study = optuna.load_study(study_name=study_info["name"], storage=url)
    rows, totals = [], {p: 0.0 for p in (*PHASES, "overhead", "wall")}
    for t in study.get_trials(deepcopy=False):
        if t.datetime_complete is None:
            continue
        manifest_path = study_dir / f"trial-{t.number}" / "manifest.json"
        if not manifest_path.exists():
            continue
        m = json.loads(manifest_path.read_text())
        timings = m.get("timings_s", {})
        wall = (t.datetime_complete - t.datetime_start).total_seconds()
        phases = {p: timings.get(p, 0.0) for p in PHASES}
        overhead = max(0.0, wall - sum(phases.values()))
        rows.append((t.number, m["status"], phases, overhead, wall))
        for p in PHASES:
            totals[p] += phases[p]
        totals["overhead"] += overhead
        totals["wall"] += wall
    header = "| trial | status | " + " | ".join(PHASES) + " | orchestration | wall (s) | orchestration % |"
    print(header)
    print("|" + "---|" * (len(PHASES) + 5))
    for number, status, phases, overhead, wall in rows:
        cells = " | ".join(f"{phases[p]:.2f}" for p in PHASES)
        print(f"| {number} | {status} | {cells} | {overhead:.2f} | {wall:.2f} | {100 * overhead / wall:.2f}% |")
    wall = totals["wall"] or 1.0
    cells = " | ".join(f"{totals[p]:.1f} ({100 * totals[p] / wall:.1f}%)" for p in PHASES)
    print(f"| all | | {cells} | {totals['overhead']:.2f} ({100 * totals['overhead'] / wall:.2f}%) | {wall:.1f} | |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1])))
