# Mantissa Log — the two commands of the README, plus a few for developers.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ./mantissa-data
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast lint format bench serve clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/.installed ## create .venv and install mantissa-log with dev extras

demo: setup ## generate a realistic sample, ingest it, run every module, print alerts
	$(BIN)/mantissa --data-dir $(DATA) demo

test: setup ## the whole suite (slow engine tests included), as CI runs it
	bash scripts/test-deps.sh
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test-fast: setup ## skip tests marked slow
	$(BIN)/pytest -n 2 -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: setup
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: setup ## run every benchmark under bench/ with default sizes
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

serve: setup
	$(BIN)/mantissa --data-dir $(DATA) serve

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .ruff_cache
