"""The leaderboard shows every pass@k with its interval over problems and says which trials cannot be told from the best."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from reports.leaderboard import build_leaderboard


def trial(study: Path, number: int, solved: set[int], problems: int = 60) -> None:
    d = study / f"trial-{number}"
    (d / "eval" / "toy").mkdir(parents=True)
    per_task = {f"toy/{i}": {"n": 1, "c": int(i in solved)} for i in range(problems)}
    (d / "eval" / "toy" / "metrics.json").write_text(json.dumps({"per_task": per_task}))
    (d / "manifest.json").write_text(json.dumps({"trial": number, "status": "complete", "params": {}}))
    (d / "metrics.json").write_text(json.dumps({"toy/pass@1": len(solved) / problems, "method": "lora"}))


def test_intervals_and_ties_with_the_best(tmp_path):
    study = tmp_path / "s"
    trial(study, 0, set(range(40)))
    trial(study, 1, set(range(39)))  # one problem fewer: indistinguishable
    trial(study, 2, set(range(10)))  # far worse
    (study / "study.json").write_text(json.dumps({"objectives": [{"metric": "toy/pass@1", "direction": "maximize"}]}))
    board = build_leaderboard(study)
    board.write(study)
    rows = {int(r["trial"]): r for r in csv.DictReader((study / "leaderboard.csv").open())}
    assert rows[0]["vs #1"] == "#1"
    assert rows[1]["vs #1"].endswith("~") and not rows[2]["vs #1"].endswith("~")
    lo, hi = json.loads(rows[0]["toy/pass@1 95% CI"])
    assert lo < 40 / 60 < hi and hi - lo < 0.3
    assert "cannot be told apart" in (study / "leaderboard.md").read_text()
