"""Fixtures shared by every test layer.

Integration tests talk to a real Kafka broker and a real PostgreSQL. `make test` starts both on
free ports (tests/with_services.py) and passes their addresses in EXPORTWATCH_TEST_KAFKA_BOOTSTRAP
and EXPORTWATCH_TEST_POSTGRES_URL; when pytest is run directly without them, the fixtures below
start their own for the session and stop them afterwards.

Every HTTP endpoint but /healthz, /readyz and /metrics needs an API key: the session's keys file
(tests/auth_support.py) is written before anything else.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import tracing
from shared.keystore import KEYS_FILE_VARIABLE
from shared.settings import Settings
from tests.auth_support import write_keys

_KEYS_DIR: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    """One keys file for the whole session (a key per role, tests/auth_support.py), set before any
    app is built or service process started: every endpoint but the ops ones needs a key."""
    global _KEYS_DIR
    _KEYS_DIR = Path(tempfile.mkdtemp(prefix="exportwatch-keys-"))
    keys_file = _KEYS_DIR / "api-keys.json"
    write_keys(keys_file)
    os.environ[KEYS_FILE_VARIABLE] = str(keys_file)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _KEYS_DIR is not None:
        shutil.rmtree(_KEYS_DIR, ignore_errors=True)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span this process makes while the test runs (shared/tracing.py), kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.install(None)
        provider.shutdown()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Settings().require_data_dir()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("EXPORTWATCH_TEST_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    from deploy.kafka.broker import KafkaBroker, ensure_jars

    ensure_jars()
    root = tmp_path_factory.mktemp("kafka")
    broker = KafkaBroker.start(data_dir=root / "data", log_file=root / "kafka.log")
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("EXPORTWATCH_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    from deploy.postgres.pg import PostgresServer, ensure_postgres

    ensure_postgres()
    # Not under pytest's basetemp: that is 0700 and PostgreSQL runs as the postgres user.
    root = Path(tempfile.mkdtemp(prefix="exportwatch-pg-"))
    root.chmod(0o755)
    server = PostgresServer.start(data_dir=root / "data")
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
