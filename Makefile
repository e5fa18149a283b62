# Exportwatch — the two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: help venv jars postgres run test test-fast lint format bench clean distclean

help:
	@echo "make run        whole pipeline on embedded defaults (local Kafka, SQLite), sample orders, records API on :8004"
	@echo "make test       lint + type checks + unit, API and integration tests (starts Kafka and PostgreSQL on free ports)"
	@echo "make test-fast  unit and API tests only (no broker, no PostgreSQL)"
	@echo "make lint       ruff + mypy --strict"
	@echo "make bench      benchmarks under bench/ (see docs/benchmarks.md)"

$(STAMP): pyproject.toml
	rm -f $(VENV)/.installed-*
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

venv: $(STAMP)

jars: venv
	$(PY) -m deploy.kafka.broker fetch

postgres: venv
	$(PY) -m deploy.postgres.pg ensure

run: venv jars
	$(PY) -m deploy.local.run

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared services deploy

test: venv jars postgres lint
	$(PY) -m tests.with_services -- $(PY) -m pytest -q -ra $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -q -ra tests/unit tests/api $(PYTEST_ARGS)

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv
	$(PY) -m bench

bench-%: venv
	$(PY) -m bench $*

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

distclean: clean
	rm -rf $(VENV) .cache
