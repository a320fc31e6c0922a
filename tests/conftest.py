"""Shared test setup: one cache for locally built models across the session, Hydra compose,
and the real services of the marked tests (PostgreSQL, SLURM, headless Chromium; Docker has its own checks)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"

# The tiny base model is built once (about a minute) and reused by every test and run.
os.environ.setdefault("HARNESS_CACHE_DIR", str(REPO / ".cache" / "tests"))
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def compose():
    """compose(overrides) -> the fully resolved root config as a plain dict."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    def _compose(overrides: list[str] | None = None) -> dict:
        with initialize_config_dir(config_dir=str(CONF), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=list(overrides or []))
        return OmegaConf.to_container(cfg, resolve=True)

    return _compose


# marker -> the variable that promises its service (`make test`, CI sets them all to 1).
REQUIRED_SERVICES = {
    "docker": "HARNESS_REQUIRE_DOCKER",
    "postgres": "HARNESS_REQUIRE_POSTGRES",
    "slurm": "HARNESS_REQUIRE_SLURM",
    "browser": "HARNESS_REQUIRE_BROWSER",
}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Where a service is promised (`make test`, CI), a skipped test marked for it is a failure, not a pass."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped:
        return
    for marker, var in REQUIRED_SERVICES.items():
        if item.get_closest_marker(marker) and os.environ.get(var) == "1":
            report.outcome = "failed"
            report.longrepr = f"{marker} test skipped although {var}=1: {report.longrepr}"
            return


# --- PostgreSQL (scripts/setup_postgres.sh; `make test` passes its URL) ----------------------


def _postgres_base_url():
    """The server's URL from HARNESS_TEST_POSTGRES_URL as a SQLAlchemy URL object, or skip."""
    raw = os.environ.get("HARNESS_TEST_POSTGRES_URL")
    if not raw:
        pytest.skip("HARNESS_TEST_POSTGRES_URL is not set (run scripts/setup_postgres.sh and export its last line, or `make test`)")
    from sqlalchemy.engine import make_url

    return make_url(raw)


def _pg_connect(url, *, wait_s: float = 0.0):
    """An autocommit psycopg (v3) connection to `url`'s server, retried for up to `wait_s` seconds."""
    import psycopg

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return psycopg.connect(
                host=url.host or "127.0.0.1",
                port=url.port or 5432,
                user=url.username,
                password=url.password,
                dbname=url.database or "postgres",
                autocommit=True,
                connect_timeout=5,
            )
        except psycopg.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def postgres_url():
    """URL (postgresql+psycopg://...) of a FRESH, empty database made for this test alone.

    The server is the one named by HARNESS_TEST_POSTGRES_URL (`make test` starts it with
    scripts/setup_postgres.sh). The database `t_<12 hex>` is owned by that URL's role and is
    dropped afterwards (WITH (FORCE), so connections a test leaves open do not block it).
    Skips when the variable is unset or the server does not answer (a failure under
    HARNESS_REQUIRE_POSTGRES=1).
    """
    import psycopg
    from psycopg import sql

    base = _postgres_base_url()
    try:
        admin = _pg_connect(base)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {base.render_as_string(hide_password=True)} does not answer: {exc}")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield base.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    # A new connection: the test may have restarted the server (pg_restart) meanwhile.
    with _pg_connect(base, wait_s=30) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class PgServer:
    """Stops/starts the local PostgreSQL cluster behind HARNESS_TEST_POSTGRES_URL (fault injection).

    pg_restart()             restart now (fast shutdown: open connections are cut), wait until it answers
    pg_restart(down_s=3)     stay down 3 s between stop and start
    pg_restart(mode="immediate")  a crash-like stop (no shutdown checkpoint; recovery on start)
    pg_restart.stop(mode="fast") / pg_restart.start()   for tests that act while the server is down
    """

    def __init__(self, url):
        self.url = url
        port = str(url.port or 5432)
        found = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout.split("\n")
        clusters = [line.split()[:2] for line in found if line.split()[2:3] == [port]]
        if not clusters:
            pytest.skip(f"no local PostgreSQL cluster on port {port} (pg_lsclusters)")
        self.version, self.cluster = clusters[0]
        self.stopped = False

    def _ctl(self, *args: str) -> None:
        subprocess.run(["pg_ctlcluster", self.version, self.cluster, *args], check=True, capture_output=True, timeout=120)

    def stop(self, mode: str = "fast") -> None:
        self.stopped = True
        try:
            self._ctl("stop", "-m", mode)
        except subprocess.CalledProcessError as exc:
            if b"not running" not in exc.stderr + exc.stdout:
                raise

    def start(self, wait_s: float = 60.0) -> None:
        deadline = time.monotonic() + wait_s
        while True:  # after an immediate stop the old processes may take a moment to exit
            try:
                self._ctl("start")
                break
            except subprocess.CalledProcessError as exc:
                if b"already running" in exc.stderr + exc.stdout:
                    break
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
        _pg_connect(self.url, wait_s=max(1.0, deadline - time.monotonic())).close()
        self.stopped = False

    def __call__(self, down_s: float = 0.0, mode: str = "fast") -> None:
        self.stop(mode)
        time.sleep(down_s)
        self.start()


@pytest.fixture
def pg_restart():
    """A PgServer: `pg_restart()` restarts the test PostgreSQL server and returns once it answers again.

    For fault-injection tests (a worker's connection dropped mid-study, pool_pre_ping, retries).
    It drives the local cluster with pg_ctlcluster, so it needs root (or the postgres user) on the
    machine that runs the server; it skips otherwise (a failure under HARNESS_REQUIRE_POSTGRES=1).
    A server left stopped by the test is started again afterwards. Every test's data outlives a
    restart; combine with `postgres_url` for a fresh database.
    """
    base = _postgres_base_url()
    if base.host not in (None, "", "127.0.0.1", "localhost", "::1"):
        pytest.skip(f"pg_restart needs a local server, not {base.host}")
    if shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        pytest.skip("pg_restart needs pg_ctlcluster and root")
    server = PgServer(base)
    yield server
    if server.stopped:
        server.start()


# --- SLURM (scripts/setup_slurm.sh; `make test` passes its partition) ------------------------


@pytest.fixture(scope="session")
def slurm_partition() -> str:
    """The partition of the single-node test cluster (HARNESS_TEST_SLURM_PARTITION), once `sinfo` answers for it.

    Skips when the variable is unset or the cluster does not answer (a failure under
    HARNESS_REQUIRE_SLURM=1). Jobs submitted with sbatch export the submitter's environment.
    """
    partition = os.environ.get("HARNESS_TEST_SLURM_PARTITION")
    if not partition:
        pytest.skip("HARNESS_TEST_SLURM_PARTITION is not set (run scripts/setup_slurm.sh and export its last line, or `make test`)")
    if shutil.which("sinfo") is None:
        pytest.skip("sinfo is not installed (run scripts/setup_slurm.sh)")
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-p", partition, "-o", "%a %T"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        pytest.skip("sinfo did not answer in 20 s (is slurmctld running? scripts/setup_slurm.sh)")
    if out.returncode != 0 or not out.stdout.strip():
        pytest.skip(f"sinfo knows no partition {partition!r}: {(out.stderr or out.stdout).strip()}")
    if not out.stdout.split()[0] == "up":
        pytest.skip(f"partition {partition!r} is not up: {out.stdout.strip()}")
    return partition


# --- headless Chromium (scripts/setup_chromium.sh; `make test` passes its binary) -------------


@pytest.fixture(scope="session")
def chromium() -> str:
    """Absolute path of the Chromium binary for the browser tests (helpers in tests/browser.py).

    HARNESS_CHROMIUM if set (`make test` passes scripts/setup_chromium.sh's last line), else
    `chromium` on PATH. Skips when neither names an executable (a failure under
    HARNESS_REQUIRE_BROWSER=1). As root Chromium needs --no-sandbox, which the helpers pass.
    """
    configured = os.environ.get("HARNESS_CHROMIUM")
    if configured:
        found = shutil.which(configured)
        if found is None:
            pytest.skip(f"HARNESS_CHROMIUM={configured} is not an executable "
                        "(run scripts/setup_chromium.sh and export its last line, or `make test`)")
        return str(Path(found).resolve())
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed and HARNESS_CHROMIUM is not set "
                    "(run scripts/setup_chromium.sh and export its last line, or `make test`)")
    return str(Path(found).resolve())
