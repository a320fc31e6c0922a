"""Where the sandbox's time goes: drive the worker directly on this host, no Docker, no driver.

    python perf/bench_worker.py [--rev HEAD~3 --rev HEAD] [--rounds 3] [--workers 2] [--null]

Feeds the 1,640 programs of ``bench_scorer.py`` (HumanEval x 10; canonical, wrong, raising,
syntax-error and printing completions) to ``worker.py`` on stdin and reads the verdicts, for each
worker version in turn, ``--rounds`` times interleaved (this VM's speed drifts by +-20%). Prints
per round: wall time, programs/s, CPU seconds of the worker and everything it started, and minor
page faults per program (each costs ~2.5 us here). ``--rev`` takes the sandbox scripts from a
git revision (default: the working tree); ``--null`` replaces every program by ``pass`` to
measure the sandbox's own cost per program. Run it as root to measure children dropped to nobody,
as in the process backend.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCRIPTS = ("worker.py", "forkserver.py")


def programs(per_task: int, null: bool) -> bytes:
    """``bench_scorer.py``'s samples as worker requests (JSON lines)."""
    from evaluators.benchmarks import load_benchmark
    from perf.bench_scorer import humaneval_samples

    bench = load_benchmark("humaneval")
    tasks = bench.by_id()
    lines = []
    for i, s in enumerate(humaneval_samples(per_task)):
        source = "pass\n" if null else bench.program(tasks[s["task_id"]], s["completion"])
        lines.append(json.dumps({"id": str(i), "source": source, "timeout_s": 3.0}))
    return ("\n".join(lines) + "\n").encode()


def checkout(rev: str | None, into: Path) -> Path:
    """The sandbox scripts of ``rev`` (None: the working tree) in a directory; returns worker.py's path."""
    into.mkdir(parents=True)
    for name in SCRIPTS:
        src = ROOT / "evaluators" / "sandbox" / name
        if rev is None:
            if src.exists():
                (into / name).write_bytes(src.read_bytes())
            continue
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:evaluators/sandbox/{name}"],
                               capture_output=True)
        if shown.returncode == 0:
            (into / name).write_bytes(shown.stdout)
    return into / "worker.py"


def run_once(worker: Path, data: bytes, workers: int) -> dict:
    scratch = tempfile.mkdtemp(prefix="bench-worker-")
    os.chmod(scratch, 0o755)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(["/usr/bin/python3", "-I", "-S", str(worker), "--workers", str(workers),
                             "--scratch", scratch, "--drop-root"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    proc.stdout.readline()  # ready
    t0 = time.perf_counter()
    feeder = threading.Thread(target=lambda: (proc.stdin.write(data), proc.stdin.close()))
    feeder.start()
    verdicts = [json.loads(line) for line in proc.stdout]
    wall = time.perf_counter() - t0
    proc.wait()
    feeder.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = len(verdicts)
    statuses: dict[str, int] = {}
    for v in verdicts:
        statuses[v["status"]] = statuses.get(v["status"], 0) + 1
    return {"n": n, "wall": wall, "rate": n / wall, "statuses": statuses,
            "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "faults": (after.ru_minflt - before.ru_minflt) / max(n, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rev", action="append", help="git revision of the sandbox scripts (repeatable); default: working tree")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--per-task", type=int, default=10)
    p.add_argument("--null", action="store_true", help="every program is `pass`: the sandbox's own cost")
    args = p.parse_args()
    data = programs(args.per_task, args.null)
    revs = args.rev or [None]
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        workers = {rev or "working tree": checkout(rev, Path(tmp) / str(i)) for i, rev in enumerate(revs)}
        results: dict[str, list[dict]] = {name: [] for name in workers}
        for r in range(1, args.rounds + 1):
            for name, worker in workers.items():
                res = run_once(worker, data, args.workers)
                results[name].append(res)
                print(f"round {r} {name:>14}: {res['n']} programs {res['wall']:5.2f} s {res['rate']:6.1f}/s  "
                      f"cpu {res['cpu']:5.2f} s  {res['faults']:4.0f} faults/program  {res['statuses']}", flush=True)
    for name, runs in results.items():
        print(f"{name:>14}: median {statistics.median(x['rate'] for x in runs):6.1f} programs/s, "
              f"cpu {statistics.median(x['cpu'] for x in runs) / runs[0]['n'] * 1e3:.2f} ms/program, "
              f"{statistics.median(x['faults'] for x in runs):.0f} faults/program")
    return 0


if __name__ == "__main__":
    sys.exit(main())
