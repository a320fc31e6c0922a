# Quickstart: `make sweep` (set up + run the lora_rank study on the embedded default)
#             `make test`  (set up + Docker sandbox + the whole test suite)
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup sweep smoke test test-fast sandbox clean

setup:
	@scripts/setup.sh

sweep: setup
	$(PY) -m harness.sweep +sweep=lora_rank

smoke: setup
	$(PY) -m harness.sweep +sweep=smoke

sandbox: setup
	scripts/setup_docker.sh

test: setup sandbox
	HARNESS_REQUIRE_DOCKER=1 $(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not integration and not docker" $(PYTEST_ARGS)

clean:
	rm -rf runs .cache
