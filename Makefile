# Two entry points: `make demo` (the main job) and `make test`. Each sets up what it needs.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv kafka-up kafka-down test test-fast test-unit test-sim chaos lint demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

kafka-up: venv
	scripts/kafka.sh start

kafka-down:
	scripts/kafka.sh stop

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: venv
	scripts/run-tests.sh

# The tests that need no broker and no database server: pure logic, the sync and the webhook
# on the fakes of tests/fakes.py (tests/unit), and the simulators (tests/sim), side by side on
# two cores; under a minute. Each half alone: `make test-unit`, `make test-sim`.
test-fast: venv
	$(MAKE) --no-print-directory -j2 --output-sync=target test-unit test-sim

test-unit: venv
	$(BIN)/pytest tests/unit -q

test-sim: venv
	$(BIN)/pytest tests/sim -q -p no:cacheprovider

# The fault tests alone (tests/faults, ~3 min); `make test` runs them too.
chaos: venv
	scripts/run-tests.sh tests/faults

demo: venv
	$(BIN)/python -m sim.demo

bench: venv
	$(BIN)/python -m bench.ingest

clean:
	scripts/kafka.sh stop || true
	rm -rf var .pytest_cache .mypy_cache
