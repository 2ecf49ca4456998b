# Two entry points: `make demo` (the main job) and `make test`. Each sets up what it needs.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv kafka-up kafka-down test chaos lint demo bench clean

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
