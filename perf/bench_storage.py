"""Storage overhead of the study worker loop: ask + claim + heartbeat + tell cost per trial, and
connections held, for 1, 2 and 4 local workers on PostgreSQL and on the journal file.

    python perf/bench_storage.py [--workers 1,2,4] [--storages postgres,journal] [--trials 200]

Each cell (storage x workers) is a fresh study of the smoke sweep (``+sweep=smoke``: method.r in
{4, 8}, train.learning_rate log-uniform, random sampler; continuous, so nothing runs out) with
``study.n_trials = --trials x workers``, ``study.heartbeat_s=1``, ``tracking=none``. The study is
created in this process; then the workers (``spawn`` processes, each with its config composed and
Optuna imported beforehand) are released at once and each runs ``harness.worker.run_worker`` with a
runner that returns COMPLETE at once (a value derived from the parameters), so everything timed is
the loop's own storage work: count trials, read the stop flag, reap, ask, first beat, claim
(user attrs + reading every trial), tell. PostgreSQL cells get a database of their own
(``bench_<uuid>``, created from ``$HARNESS_POSTGRES_URL`` and dropped afterwards); journal cells a
fresh runs_dir.

Per cell it prints:

* wall: release -> last worker returned (includes each worker's open_study, its Docker container
  reap at start and the loop's up-to-1-s wait for the last running trials at the end);
* span: first trial started -> last trial finished (the steady loop, from the trials' timestamps);
* trials/s over wall, and storage time per trial per worker = wall x workers / trials (and the
  same over span);
* PostgreSQL: peak connections to the cell's database (``pg_stat_activity``, polled every 50 ms),
  overall and per worker; journal: journal bytes per trial;
* a correctness line: complete (non-discarded) trials == n_trials, no two complete trials with the
  same parameters, discarded / failed / still-running trials.

Then the cost of one heartbeat alone, on a fresh study with one running trial: 200
``storage.record_heartbeat`` (PostgreSQL) and 200 ``storage.set_trial_system_attr`` (journal, the
lease ``harness.liveness`` keeps) in ms per beat.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_PG = "postgresql+psycopg://harness:harness-test-pw@127.0.0.1:5432/harness"
HEARTBEAT_CALLS = 200


def instant(trial, **context):
    """A trial that completes at once; its value depends on its parameters (the sampler sees a landscape)."""
    from optuna.trial import TrialState

    p = trial.params
    value = -abs(math.log10(p.get("train.learning_rate", 1e-3)) + 2.7) + 0.01 * p.get("method.r", 4)
    return TrialState.COMPLETE, [value], None, False


# -- PostgreSQL helpers ---------------------------------------------------------------------------


def _libpq(url: str) -> str:
    """SQLAlchemy URL -> libpq URL (psycopg.connect)."""
    return "postgresql://" + url.split("://", 1)[1]


def _with_db(url: str, db: str) -> str:
    base, _, _query = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + db + (f"?{_query}" if _query else "")


def create_db(admin_url: str) -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(admin_url), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_db(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(admin_url), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ConnectionPoller:
    """Polls the number of other sessions on one database every ``interval`` s; keeps the peak."""

    SQL = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"

    def __init__(self, url: str, interval: float = 0.05):
        import psycopg

        self._conn = psycopg.connect(_libpq(url), autocommit=True)
        self._interval, self._stop = interval, threading.Event()
        self.peak, self.samples = 0, 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            n = self._conn.execute(self.SQL).fetchone()[0]
            self.peak, self.samples = max(self.peak, n), self.samples + 1
            self._stop.wait(self._interval)

    def now(self) -> int:
        return self._conn.execute(self.SQL).fetchone()[0]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


# -- one cell -------------------------------------------------------------------------------------


def overrides_for(storage: str, workers: int, n_trials: int, runs_dir: str, name: str) -> list[str]:
    return ["+sweep=smoke", f"storage={storage}", f"runs_dir={runs_dir}", f"study.name={name}",
            f"study.n_trials={n_trials}", f"launcher.n_workers={workers}", "tracking=none",
            "study.heartbeat_s=1", "study.grace_s=10", "study.max_trials=100000"]


def _worker(overrides: list[str], pg_url: str | None, ready, go, results) -> None:
    """One worker process: compose and import first, wait for the start, run the loop, report times."""
    import logging

    if pg_url:
        os.environ["HARNESS_POSTGRES_URL"] = pg_url
    import optuna

    from harness.config import compose
    from harness.worker import run_worker

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    raw = compose(overrides)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # one "[trial n] complete" line per trial
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - for the life of the process
    ready.release()
    go.wait()
    t0 = time.time()
    error = None
    try:
        res = run_worker(raw, overrides, progress=False, runner=instant)
        stop = res.stop_reason
        ran = res.ran
    except BaseException:  # noqa: BLE001 - reported by the parent
        import traceback

        error, stop, ran = traceback.format_exc(), None, 0
    results.put({"pid": os.getpid(), "start": t0, "end": time.time(), "ran": ran, "stop": stop, "error": error})


def _open(overrides: list[str]):
    from harness.config import compose, study_config
    from harness.worker import open_study

    cfg = study_config(compose(overrides))
    study, _ = open_study(cfg)
    return cfg, study


def _dispose(study) -> None:
    """Close the parent's pooled connections (they would count as held)."""
    backend = getattr(study._storage, "_backend", study._storage)
    engine = getattr(backend, "engine", None)
    if engine is not None:
        backend.remove_session()
        engine.dispose()


def verify(study, n_trials: int) -> dict:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    discarded = [t for t in trials if t.user_attrs.get("discarded")]
    live = [t for t in trials if not t.user_attrs.get("discarded")]
    complete = [t for t in live if t.state == TrialState.COMPLETE]
    seen: dict[tuple, int] = {}
    dups = 0
    for t in complete:
        key = tuple(sorted(t.params.items()))
        dups += key in seen
        seen[key] = t.number
    return {
        "total": len(trials), "complete": len(complete), "n_trials": n_trials, "duplicates": dups,
        "discarded": len(discarded),
        "discard_reasons": sorted({str(t.user_attrs["discarded"]).split(" of trial")[0] for t in discarded}),
        "failed": sum(t.state == TrialState.FAIL for t in live), "running": sum(t.state == TrialState.RUNNING for t in trials),
        "ok": len(complete) == n_trials and dups == 0,
        "first_start": min(t.datetime_start.timestamp() for t in complete if t.datetime_start),
        "last_end": max(t.datetime_complete.timestamp() for t in trials if t.datetime_complete),
        "first_by_worker": _first_by_worker(trials),
    }


def _first_by_worker(trials) -> dict[int, float]:
    out: dict[int, float] = {}
    for t in trials:
        pid = (t.user_attrs.get("worker") or {}).get("pid")
        if pid is not None and t.datetime_start is not None:
            out[pid] = min(out.get(pid, math.inf), t.datetime_start.timestamp())
    return out


def run_cell(storage: str, workers: int, per_worker: int, admin_url: str | None) -> dict:
    n_trials = per_worker * workers
    name = f"bench-{storage[:2]}-{workers}w-{uuid.uuid4().hex[:8]}"
    runs_dir = tempfile.mkdtemp(prefix="bench-storage-")
    db = create_db(admin_url) if storage == "postgres" else None
    pg_url = _with_db(admin_url, db) if db else None
    if pg_url:
        os.environ["HARNESS_POSTGRES_URL"] = pg_url
    overrides = overrides_for(storage, workers, n_trials, runs_dir, name)
    try:
        cfg, study = _open(overrides)  # the sweep entry creates the study before launching workers
        _dispose(study)
        ctx = mp.get_context("spawn")
        ready, go, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(overrides, pg_url, ready, go, results)) for _ in range(workers)]
        for p in procs:
            p.start()
        for _ in procs:
            if not ready.acquire(timeout=120):
                raise RuntimeError("a worker did not get ready in 120 s")
        poller = ConnectionPoller(pg_url) if pg_url else None
        idle = poller.now() if poller else 0
        if poller:
            poller.start()
        t0 = time.time()
        go.set()
        outs = []
        while len(outs) < len(procs):
            try:
                outs.append(results.get(timeout=1))
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and results.empty():
                    raise RuntimeError(f"{len(procs) - len(outs)} worker(s) died without a result "
                                       f"(exit codes {[p.exitcode for p in procs]})") from None
        wall = max(o["end"] for o in outs) - t0
        for p in procs:
            p.join()
        if poller:
            poller.stop()
        for o in outs:
            if o["error"]:
                print(f"worker {o['pid']} raised:\n{o['error']}", file=sys.stderr)
        cfg, study = _open(overrides)
        check = verify(study, n_trials)
        _dispose(study)
        journal = cfg.dir / "optuna.journal"
        res = {
            "storage": storage, "workers": workers, "n_trials": n_trials, "wall": wall,
            "span": check["last_end"] - check["first_start"],
            "startup": statistics.mean(v - t0 for v in check["first_by_worker"].values()) if check["first_by_worker"] else float("nan"),
            "ran": sum(o["ran"] for o in outs), "stops": [o["stop"] for o in outs if o["stop"]],
            "errors": sum(bool(o["error"]) for o in outs), "check": check,
            "peak_conn": poller.peak if poller else None, "idle_conn": idle, "polls": poller.samples if poller else 0,
            "journal_bytes": journal.stat().st_size if storage == "journal" and journal.exists() else None,
        }
        return res
    finally:
        if db:
            drop_db(admin_url, db)
        shutil.rmtree(runs_dir, ignore_errors=True)


# -- heartbeat alone ------------------------------------------------------------------------------


def heartbeat_cost(storage: str, admin_url: str | None, calls: int = HEARTBEAT_CALLS) -> float:
    """ms per beat, as harness.liveness.Heartbeat.beat does it, on a fresh study with one running trial."""
    from harness.liveness import LEASE_ATTR, uses_optuna_heartbeat

    runs_dir = tempfile.mkdtemp(prefix="bench-storage-")
    db = create_db(admin_url) if storage == "postgres" else None
    if db:
        os.environ["HARNESS_POSTGRES_URL"] = _with_db(admin_url, db)
    try:
        _, study = _open(overrides_for(storage, 1, 1, runs_dir, f"bench-hb-{uuid.uuid4().hex[:8]}"))
        st = study._storage
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Heartbeat of storage is supposed to be used with Study.optimize"
            trial = study.ask()
        tid = trial._trial_id
        if storage == "postgres":
            assert uses_optuna_heartbeat(st)

            def beat():
                st.record_heartbeat(tid)
        else:
            def beat():
                st.set_trial_system_attr(tid, LEASE_ATTR, time.time())
        for _ in range(5):  # warm-up: connection, first heartbeat row
            beat()
        t = time.perf_counter()
        for _ in range(calls):
            beat()
        ms = (time.perf_counter() - t) / calls * 1e3
        _dispose(study)
        return ms
    finally:
        if db:
            drop_db(admin_url, db)
        shutil.rmtree(runs_dir, ignore_errors=True)


# -- main -----------------------------------------------------------------------------------------


def _pg_url() -> str:
    import psycopg

    url = os.environ.get("HARNESS_POSTGRES_URL") or DEFAULT_PG
    try:
        psycopg.connect(_libpq(url), connect_timeout=5).close()
    except psycopg.OperationalError as e:
        sys.exit(f"PostgreSQL does not answer at {url.split('@')[-1]} ({str(e).strip().splitlines()[0]}); "
                 f"run scripts/setup_postgres.sh and export HARNESS_POSTGRES_URL=<its last line>")
    return url


def fmt_row(r: dict) -> str:
    n, w = r["n_trials"], r["workers"]
    conn = f"{r['peak_conn']} ({r['peak_conn'] / w:.1f})" if r["peak_conn"] is not None else "-"
    jb = f"{r['journal_bytes'] / n:,.0f}" if r["journal_bytes"] is not None else "-"
    return (f"| {r['storage']} | {w} | {n} | {r['wall']:.2f} | {r['span']:.2f} | {n / r['wall']:.1f} | "
            f"{r['wall'] * w / n * 1e3:.1f} | {r['span'] * w / n * 1e3:.1f} | {r['startup']:.2f} | {conn} | {jb} |")


HEADER = ("| storage | workers | trials | wall s | span s | trials/s | ms/trial/worker (wall) | ms/trial/worker (span) "
          "| worker start s | peak conns (per worker) | journal B/trial |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    p.add_argument("--storages", default="postgres,journal", help="comma-separated: postgres, journal")
    p.add_argument("--trials", type=int, default=200, help="complete trials per worker; a cell's n_trials = this x workers")
    args = p.parse_args()
    workers = [int(x) for x in args.workers.split(",") if x]
    storages = [s.strip() for s in args.storages.split(",") if s.strip()]
    for s in storages:
        if s not in ("postgres", "journal"):
            p.error(f"unknown storage {s!r}")
    admin_url = _pg_url() if "postgres" in storages else None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"# {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, optuna {optuna.__version__}, "
          f"python {sys.version.split()[0]}", flush=True)
    rows = []
    t_all = time.time()
    for storage in storages:
        for w in workers:
            r = run_cell(storage, w, args.trials, admin_url)
            rows.append(r)
            c = r["check"]
            extra = f", peak {r['peak_conn']} conns ({r['idle_conn']} idle before start, {r['polls']} polls)" if r["peak_conn"] is not None else ""
            print(f"{storage:>8} {w}w: {r['n_trials']} trials in {r['wall']:.2f} s (span {r['span']:.2f} s, "
                  f"{r['n_trials'] / r['wall']:.1f}/s, {r['wall'] * w / r['n_trials'] * 1e3:.1f} ms/trial/worker){extra}", flush=True)
            print(f"{'':>8}     correctness {'OK' if c['ok'] and not r['errors'] else 'FAIL'}: complete {c['complete']}/{c['n_trials']}, "
                  f"duplicate params {c['duplicates']}, discarded {c['discarded']} {c['discard_reasons'] or ''}, "
                  f"failed {c['failed']}, running {c['running']}, total {c['total']}, ran {r['ran']}, "
                  f"worker errors {r['errors']}{', stops ' + str(r['stops']) if r['stops'] else ''}", flush=True)
    beats = {s: heartbeat_cost(s, admin_url) for s in storages}
    print()
    print(HEADER)
    for r in rows:
        print(fmt_row(r))
    print()
    for s, ms in beats.items():
        call = "record_heartbeat" if s == "postgres" else "set_trial_system_attr"
        print(f"heartbeat alone, {s}: {ms:.2f} ms per beat ({HEARTBEAT_CALLS} x storage.{call})")
    print(f"total {time.time() - t_all:.0f} s")
    return 0 if all(r["check"]["ok"] and not r["errors"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
