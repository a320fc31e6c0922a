# Quickstart: `make sweep` (set up + run the lora_rank study on the embedded default)
#             `make test`  (set up + Docker sandbox + PostgreSQL + SLURM + Chromium + the whole test suite)
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup sweep smoke test test-fast lint sandbox postgres slurm chromium clean

setup:
	@scripts/setup.sh

sweep: setup
	$(PY) -m harness.sweep +sweep=lora_rank

smoke: setup
	$(PY) -m harness.sweep +sweep=smoke

sandbox: setup
	scripts/setup_docker.sh

# A local PostgreSQL server (role/database `harness`); the script's last line is its URL.
postgres:
	scripts/setup_postgres.sh

# A single-node SLURM cluster (munged, slurmctld, slurmd); the script's last line is the partition.
slurm:
	scripts/setup_slurm.sh

# Headless Chromium (Debian's package) for the browser tests; the script's last line is the binary.
chromium:
	scripts/setup_chromium.sh

# ruff (lint) and mypy (types), configured in pyproject.toml; part of `make test`.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

# Docker, PostgreSQL, SLURM and Chromium are promised here: a test of theirs that skips fails instead.
test: setup lint sandbox
	@url=$$(scripts/setup_postgres.sh) && partition=$$(scripts/setup_slurm.sh) && chromium=$$(scripts/setup_chromium.sh) && \
	echo "test services: PostgreSQL at $${url##*@} (password from the environment), SLURM partition $$partition, Chromium $$chromium" && \
	HARNESS_REQUIRE_DOCKER=1 HARNESS_REQUIRE_POSTGRES=1 HARNESS_REQUIRE_SLURM=1 HARNESS_REQUIRE_BROWSER=1 \
	HARNESS_TEST_POSTGRES_URL="$$url" HARNESS_TEST_SLURM_PARTITION="$$partition" HARNESS_CHROMIUM="$$chromium" \
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not integration and not docker and not postgres and not slurm and not browser" $(PYTEST_ARGS)

clean:
	rm -rf runs .cache
