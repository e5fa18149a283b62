"""Schemathesis over the OpenAPI document of each of the four services, in-process through ASGI.

For every operation of every service, Schemathesis generates requests from the published schema,
valid ones and ones that break it, and each answer must hold:

- no 5xx: whatever a client sends, the answer is a 2xx or a 4xx (or a 5xx the operation documents
  for an upstream that is down: the eCFR's 502 on `POST /ccl/update` and `POST /part746/update`);
- a documented status answers with its documented body (`response_schema_conformance`) and
  content type (`content_type_conformance`);
- a request that breaks the schema is refused with a 4xx (`negative_data_rejection`).

Every numeric parameter must also be bounded in the document, so no client can send the number a
database cannot hold (a huge `offset` once gave a 500 on records).

The services run as in production, but without Kafka (`start_kafka=False`): records on a SQLite
file seeded with a decided, a reviewed and a pending order and a dead letter, so the listing
routes answer with real rows; what the routes publish (reviews, clearances) is kept by a stand-in.
Operations that reach the internet (`POST /ccl/update`, `POST /lists/update`, `POST /part746/update`)
are fuzzed against a dead endpoint: their documented answer is then a 502 or a failed outcome,
never a crash.

Each request carries an admin key (`tests.auth_support.bearer()`: the session's keys file, which
every app built here reads through EXPORTWATCH_API_KEYS_FILE; tests/api/test_auth.py shows that no
route answers without one).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python import asgi
from schemathesis.specs.openapi import checks as openapi_checks

from services.classifier.app import create_app as classifier_app
from services.records.app import create_app as records_app
from services.records.handler import RecordsHandler
from services.records.models import create_schema
from services.risk.app import create_app as risk_app
from services.screening.app import create_app as screening_app
from shared.db import make_engine, make_sessionmaker
from shared.kafka import Outgoing
from shared.settings import REPO_ROOT, Settings, load_settings
from tests import classifier_support
from tests.auth_support import bearer
from tests.records_support import dead_letter, decided, message, reviewed, submitted
from tests.screening_support import loaded_lists


def no_undocumented_server_error(ctx: Any, response: Any, case: Any) -> None:
    """`not_a_server_error`, except a 5xx the operation documents: the 502 of POST /ccl/update and
    POST /part746/update when the eCFR cannot be read, which is the truth about an upstream."""
    documented = case.operation.definition.raw.get("responses", {})
    if response.status_code >= 500 and str(response.status_code) not in documented:
        raise AssertionError(
            f"{case.operation.label} answered {response.status_code}, a server error it does not document: "
            f"{response.text[:500]}"
        )


CHECKS = [
    no_undocumented_server_error,
    openapi_checks.response_schema_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.negative_data_rejection,
]
# Per operation and phase; about 40 operations, so two to three thousand requests per run.
EXAMPLES = 40
# The eCFR and the list publishers, as far as these tests are concerned: nobody answers.
DEAD_ENDPOINT = "http://127.0.0.1:9"


async def _keep(outgoing: Outgoing) -> None:
    """Stands in for the broker where a route publishes (reviews, clearances): accepted, dropped."""


def _started(app: FastAPI) -> FastAPI:
    """Starts the app's lifespan (its reference data loads) in Schemathesis' event loop thread,
    where every fuzzed request of this app then runs."""
    with asgi.get_client(cast(Any, app)) as client:
        assert client.get("/healthz", headers=bearer()).status_code == 200
    return app


@pytest.fixture(scope="module")
def classifier_service(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    folder = tmp_path_factory.mktemp("fuzz-classifier")
    settings = Settings(
        catalog_database_url=f"sqlite+aiosqlite:///{folder / 'catalog.db'}",
        catalog_seed_csv=classifier_support.SEED_CSV,
        ccl_cache_dir=folder / "ccl",
        ecfr_api_url=DEAD_ENDPOINT,
    )
    return _started(classifier_app(settings, start_kafka=False))


@pytest.fixture(scope="module")
def screening_service(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    folder = tmp_path_factory.mktemp("fuzz-screening")
    settings = Settings(screening_cache_dir=folder / "lists", screening_update_base_url=DEAD_ENDPOINT)
    return _started(
        screening_app(
            settings,
            start_kafka=False,
            http_transport=httpx.MockTransport(lambda request: httpx.Response(503)),
            lists=loaded_lists(),
            publish=_keep,
        )
    )


@pytest.fixture(scope="module")
def risk_service(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    folder = tmp_path_factory.mktemp("fuzz-risk")
    settings = Settings(
        risk_database_url=f"sqlite+aiosqlite:///{folder / 'risk.db'}",
        part746_cache_dir=folder / "part746",
        ecfr_api_url=DEAD_ENDPOINT,
    )
    return _started(risk_app(settings, start_kafka=False))


@pytest.fixture(scope="module")
def records_service(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    database = tmp_path_factory.mktemp("fuzz-records") / "records.db"
    settings = load_settings("records", database_url=f"sqlite+aiosqlite:///{database}")
    _seed_records(settings)
    return _started(records_app(settings, start_kafka=False, publish=_keep))


def _seed_records(settings: Settings) -> None:
    """A decided order, a reviewed one, a pending one and a dead letter, written by the consumer's
    own handler into the database the fuzzed app then opens."""

    async def seed() -> None:
        engine = make_engine(settings.database_url)
        try:
            await create_schema(engine)
            handler = RecordsHandler(settings=settings, sessionmaker=make_sessionmaker(engine))
            held, released, pending = (
                submitted("SO-FUZZ-1"),
                submitted("SO-FUZZ-2", destination_country="FR"),
                submitted("SO-FUZZ-3"),
            )
            held_decision = decided(held, "HOLD")
            events = [
                held,
                released,
                pending,
                held_decision,
                decided(released, "RELEASE"),
                reviewed(held_decision),
                dead_letter(b'{"schema": "order.submitted.v1", "order_id": '),
            ]
            for offset, event in enumerate(events):
                await handler(message(event, offset=offset))
        finally:
            await engine.dispose()

    asyncio.run(seed())


def _documents() -> dict[str, dict[str, Any]]:
    """Each service's OpenAPI document, built from its routes (no lifespan runs, nothing loads)."""
    return {
        "classifier": classifier_app(Settings()).openapi(),
        "screening": screening_app(Settings()).openapi(),
        "risk": risk_app(Settings()).openapi(),
        "records": records_app(Settings()).openapi(),
    }


DOCUMENTS = _documents()
classifier = schemathesis.openapi.from_dict(DOCUMENTS["classifier"])
screening = schemathesis.openapi.from_dict(DOCUMENTS["screening"])
risk = schemathesis.openapi.from_dict(DOCUMENTS["risk"])
records = schemathesis.openapi.from_dict(DOCUMENTS["records"])

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


# Requests sent and answers received per service and status, written to var/fuzz/last-run.json.
SENT: Counter[tuple[str, int]] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _count_requests() -> Iterator[None]:
    yield
    if SENT:
        folder = REPO_ROOT / "var" / "fuzz"
        folder.mkdir(parents=True, exist_ok=True)
        summary = {
            service: {str(status): n for (s, status), n in sorted(SENT.items()) if s == service}
            for service in sorted({s for s, _ in SENT})
        }
        (folder / "last-run.json").write_text(json.dumps(summary, indent=2) + "\n")


def _call(case: Any, app: FastAPI) -> None:
    # The admin key unless the case breaks its headers on purpose: those include a missing or
    # malformed Authorization header, which must be refused (401), not repaired here.
    negative_headers = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    headers = None if negative_headers else bearer()
    response = case.call_and_validate(app=app, headers=headers, checks=CHECKS)
    SENT[(app.title.removeprefix("Exportwatch "), response.status_code)] += 1


@classifier.parametrize()
@FUZZ
def test_classifier_api_never_fails_and_keeps_to_its_schema(case: Any, classifier_service: FastAPI) -> None:
    _call(case, classifier_service)


@screening.parametrize()
@FUZZ
def test_screening_api_never_fails_and_keeps_to_its_schema(case: Any, screening_service: FastAPI) -> None:
    _call(case, screening_service)


@risk.parametrize()
@FUZZ
def test_risk_api_never_fails_and_keeps_to_its_schema(case: Any, risk_service: FastAPI) -> None:
    _call(case, risk_service)


@records.parametrize()
@FUZZ
def test_records_api_never_fails_and_keeps_to_its_schema(case: Any, records_service: FastAPI) -> None:
    _call(case, records_service)


# --- every numeric parameter bounded --------------------------------------------------------------


def _numeric_unbounded(schema: dict[str, Any], components: dict[str, Any], seen: set[str]) -> list[str]:
    """Paths inside `schema` to an integer or number without both a minimum and a maximum."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _numeric_unbounded(components[name], components, seen | {name})
    found: list[str] = []
    if schema.get("type") in ("integer", "number"):
        low = "minimum" in schema or "exclusiveMinimum" in schema
        high = "maximum" in schema or "exclusiveMaximum" in schema
        if not (low and high):
            found.append("")
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += _numeric_unbounded(option, components, seen)
    for name, prop in schema.get("properties", {}).items():
        found += [f".{name}{p}" for p in _numeric_unbounded(prop, components, seen)]
    if isinstance(schema.get("items"), dict):
        found += [f"[]{p}" for p in _numeric_unbounded(schema["items"], components, seen)]
    return found


@pytest.mark.parametrize("service", ["classifier", "screening", "risk", "records"])
def test_every_numeric_parameter_has_a_minimum_and_a_maximum(service: str) -> None:
    # Query, path and header parameters. Numbers inside request bodies are the event contract's
    # (shared/events.py, e.g. a line's quantity on POST /assess): bounding those would change the
    # contract ERP integrators rely on, so they are left to it; the fuzzing above sends them huge.
    document = DOCUMENTS[service]
    components = document.get("components", {}).get("schemas", {})
    unbounded = [
        f"{method.upper()} {path} {parameter['in']} {parameter['name']}{where}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        for where in _numeric_unbounded(parameter.get("schema", {}), components, set())
    ]
    assert unbounded == [], "\n".join(unbounded)
    numeric = [
        parameter["name"]
        for operations in document["paths"].values()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter.get("schema", {}).get("type") in ("integer", "number")
    ]
    if service == "records":  # the check has something to look at: limit and offset on every list
        assert numeric.count("offset") >= 3 and numeric.count("limit") >= 3
