# Exportwatch — the two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: help venv native jars postgres run test test-fast lint format bench clean distclean

help:
	@echo "make run        whole pipeline on embedded defaults (local Kafka, SQLite), sample orders, records API on :8004"
	@echo "make test       lint + type checks + unit, API and integration tests (starts Kafka and PostgreSQL on free ports)"
	@echo "make test-fast  unit and API tests only (no broker, no PostgreSQL)"
	@echo "make lint       ruff + mypy --strict (code and tests) + complexity limits (tools/complexity.py)"
	@echo "make bench      benchmarks under bench/ (see docs/benchmarks.md)"
	@echo "make native     compile the screening matcher with mypyc (run, test and bench do it first)"

$(STAMP): pyproject.toml
	rm -f $(VENV)/.installed-*
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

venv: $(STAMP)

# The screening matcher compiled with mypyc, rebuilt when a compiled module's source or mypy changed
# (deploy/native.py compares the SHA-256 of each source with the one the build recorded).
native: venv
	$(PY) -m deploy.native ensure

jars: venv
	$(PY) -m deploy.kafka.broker fetch

postgres: venv
	$(PY) -m deploy.postgres.pg ensure

run: venv native jars
	$(PY) -m deploy.local.run

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared services deploy tools tests
	$(PY) -m tools.complexity

test: venv native jars postgres lint
	EXPORTWATCH_REQUIRE_NATIVE=1 $(PY) -m tests.with_services -- $(PY) -m pytest -q -ra $(PYTEST_ARGS)

# Integration-marked cases (PostgreSQL-parametrised ones included) are deselected, and counted as such.
test-fast: venv native
	$(PY) -m pytest -q -ra -m "not integration" tests/unit tests/api $(PYTEST_ARGS)

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv native
	$(PY) -m bench

bench-%: venv native
	$(PY) -m bench $*

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache build
	test ! -x $(PY) || $(PY) -m deploy.native clean

distclean: clean
	rm -rf $(VENV) .cache
