"""Time to build the study report for N synthetic trials, and the page's size.

    python perf/bench_report.py --trials 100 --problems 164 --reps 3

Writes a synthetic study (tests/reports/records.py: complete trials with histories, per-problem
results and prompts, plus a pruned, a failed, a lost and a malformed record) into a temporary
folder, then builds the report ``--reps`` times and prints min/median/max seconds and the size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.reports.records

from reports.build import build_report  # noqa: E402
from tests.reports.records import write_study  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--problems", type=int, default=164)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        study = write_study(Path(tmp) / "bench", n_trials=args.trials, problems=args.problems)
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            report = build_report(study)
            times.append(time.perf_counter() - t0)
        size = report.path.stat().st_size
        print(f"{args.trials} complete trials (+5 faulty records), {args.problems} problems: "
              f"build min {min(times):.2f} s, median {statistics.median(times):.2f} s, max {max(times):.2f} s "
              f"(first includes imports); page {size / 2**20:.2f} MiB, of which plotly.js "
              f"{len(__import__('plotly.offline', fromlist=['get_plotlyjs']).get_plotlyjs()) / 2**20:.2f} MiB; "
              f"{len(report.skipped)} record(s) skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
