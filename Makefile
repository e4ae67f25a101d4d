# Kwit: two commands do everything on a fresh clone — `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint format chaos bench clean help

help:
	@echo "make demo   - install into .venv and run the whole flow on SQLite with the emulators"
	@echo "make test   - install into .venv and run the test suite (PostgreSQL + Redis)"
	@echo "make lint   - ruff check, ruff format --check, the import-layer contracts (lint-imports)"
	@echo "make chaos  - the full-size exactly-once fault test (500+ orders)"
	@echo "make bench  - benchmarks against the fixed floor (see docs/BENCHMARKS.md)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kwit demo

test: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider -m "not chaos"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

chaos: $(STAMP)
	KWIT_CHAOS_ORDERS=$${KWIT_CHAOS_ORDERS:-500} $(BIN)/pytest -p no:cacheprovider -m chaos -s

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	bash bench/run.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis var kwit.db
