# Exportwatch — the two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha256sum | cut -c1-12)
PYTEST_ARGS ?=
# AUDIT=off skips the vulnerability audit (offline work only; CI reaches PyPI). RUN_ARGS=--secure:
# make run with TLS + SCRAM + ACLs.
AUDIT ?= on
RUN_ARGS ?=

.PHONY: help venv native jars postgres browser run test test-fast test-faults lint audit lock format bench bench-pipeline clean distclean

help:
	@echo "make run        whole pipeline on embedded defaults (local Kafka, SQLite), sample orders, records API on :8004"
	@echo "make test       lint + type checks + unit, API and integration tests (starts Kafka and PostgreSQL on free ports)"
	@echo "make test-fast  unit and API tests only (no broker, no PostgreSQL)"
	@echo "make test-faults  the fault suite alone (its own broker, PostgreSQL and services; docs/reliability.md)"
	@echo "make lint       ruff + mypy --strict (code and tests) + complexity limits (tools/complexity.py)"
	@echo "make audit      pyproject pins agree with requirements.lock; known vulnerabilities of the locked versions"
	@echo "make lock       requirements.lock (with hashes) from pyproject.toml, after changing a pin"
	@echo "make bench      benchmarks under bench/ (see docs/benchmarks.md)"
	@echo "make bench-pipeline  the whole pipeline's throughput and latency over a real broker (BENCH_ARGS='--orders 2000 --db sqlite')"
	@echo "make native     compile the screening matcher with mypyc (run, test and bench do it first)"
	@echo "make generate   rewrite the event catalogue (docs/schemas, docs/asyncapi.yaml) and deploy/k8s/base/generated"
	@echo "make deploy-tools  fetch the schemas and kustomize that validate the deployment files (test does it first)"

# The lock first (every file checked against its SHA-256), then the project itself; a dependency
# added to pyproject but not yet locked still installs, and `make audit` says the lock is stale.
$(STAMP): pyproject.toml requirements.lock
	rm -f $(VENV)/.installed-*
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
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

# Debian's Chromium for the dashboard's browser test (installed with apt when missing).
browser: venv
	$(PY) -m deploy.browser ensure

run: venv native jars
	$(PY) -m deploy.local.run $(RUN_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared services deploy exportwatch tools tests
	$(PY) -m tools.complexity

audit: venv
	$(PY) -m deploy.dependencies check
ifeq ($(AUDIT),off)
	@echo "dependency audit: SKIPPED (AUDIT=off): no vulnerability was looked for"
else
	$(PY) -m deploy.dependencies audit
endif

lock: venv
	$(PY) -m deploy.dependencies lock

test: venv native jars postgres browser deploy-tools lint audit
	EXPORTWATCH_REQUIRE_NATIVE=1 $(PY) -m tests.with_services -- $(PY) -m pytest -q -ra $(PYTEST_ARGS)

# Integration-marked cases (PostgreSQL-parametrised ones included) are deselected, and counted as such.
test-fast: venv native
	$(PY) -m pytest -q -ra -m "not integration" tests/unit tests/api $(PYTEST_ARGS)

# The fault suite alone (make test runs it too): it starts and hurts its own broker and PostgreSQL.
test-faults: venv native jars postgres
	$(PY) -m pytest -q -ra tests/faults $(PYTEST_ARGS)

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv native
	$(PY) -m bench

bench-%: venv native
	$(PY) -m bench $*

# The four services and a broker as separate processes, records on SQLite and PostgreSQL, beside the
# bare 4-hop relay (bench/pipeline); options in BENCH_ARGS (python -m bench.pipeline --help).
BENCH_ARGS ?=
bench-pipeline: venv native jars postgres
	$(PY) -m bench.pipeline $(BENCH_ARGS)

# --- issue 16: event catalogue, deployment files and their offline validation ---------------------
.PHONY: generate deploy-tools

# Files generated from shared/events.py, shared/topology.py and shared/settings.py; a test fails
# when the committed ones drift from the code.
generate: venv
	$(PY) -m deploy.catalogue write
	$(PY) -m deploy.manifests write

# AsyncAPI and compose-spec schemas, Strimzi and KEDA CRDs, kustomize: fetched once from the package
# registries into .cache/deploy-tools/ (deploy/validation/tools.py).
deploy-tools: venv
	$(PY) -m deploy.validation.tools fetch

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache build
	test ! -x $(PY) || $(PY) -m deploy.native clean

distclean: clean
	rm -rf $(VENV) .cache
