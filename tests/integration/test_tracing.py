"""One order is one trace: published by the order publisher, then classified, screened, decided and
recorded by the four stages' own handlers in their consumer loops, over the real broker, with the
W3C trace context carried in the Kafka headers. The spans go to an in-memory exporter."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exportwatch.client import OrderPublisher
from services.classifier.app import open_catalog
from services.classifier.handler import ClassifierHandler
from services.records.app import create_app as create_records_app
from services.records.handler import RecordsHandler
from services.risk.handler import RiskHandler
from services.screening.handler import ScreeningHandler
from shared.events import (
    TOPIC_CLASSIFIED,
    TOPIC_DECIDED,
    TOPIC_SCREENED,
    TOPIC_SUBMITTED,
)
from shared.kafka import Handler
from shared.kafka_security import client_options, client_settings
from shared.service import KafkaStage
from shared.settings import REPO_ROOT, Settings, load_settings
from tests import classifier_support
from tests.integration.kafka_helpers import create_prefixed_topics, unique_prefix, wait_for
from tests.records_support import shipped, submitted
from tests.risk_support import risk_runtime, sqlite_url
from tests.screening_support import loaded_screening

pytestmark = pytest.mark.integration

ORDER = next(
    o
    for o in json.loads((REPO_ROOT / "samples" / "orders.json").read_text())
    if o["order_id"] == "SO-2026-000106"
)


@pytest.fixture
async def stages(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Settings]:
    """The four stages' handlers, each in its own consumer group's loop, on topics of their own."""
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=1)

    def settings(service: str) -> Settings:
        return load_settings(
            service,
            kafka_bootstrap_servers=kafka_bootstrap,
            topic_prefix=prefix,
            catalog_database_url=f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}",
            catalog_seed_csv=REPO_ROOT / "samples" / "catalog.csv",
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'records.db'}",
        )

    reference = classifier_support.reference()
    catalog = await open_catalog(settings("classifier"), reference.ccl)
    records_app = create_records_app(settings("records"), start_kafka=False)
    running: list[KafkaStage] = []
    try:
        async with (
            risk_runtime(settings("risk"), sqlite_url(tmp_path), with_part746=False) as risk,
            records_app.router.lifespan_context(records_app),
        ):
            handlers: dict[str, tuple[list[str], Handler]] = {
                "classifier": (
                    [TOPIC_SUBMITTED],
                    ClassifierHandler(
                        settings=settings("classifier"),
                        reference=lambda: reference,
                        catalog=lambda: catalog.snapshot,
                    ),
                ),
                "screening": (
                    [TOPIC_CLASSIFIED],
                    ScreeningHandler(settings("screening"), loaded_screening()[1]),
                ),
                "risk": ([TOPIC_SCREENED], RiskHandler(settings=settings("risk"), runtime=risk)),
                "records": (
                    [TOPIC_SUBMITTED, TOPIC_CLASSIFIED, TOPIC_SCREENED, TOPIC_DECIDED],
                    RecordsHandler(
                        settings=settings("records"), sessionmaker=records_app.state.runtime.sessionmaker
                    ),
                ),
            }
            for service, (topics, handler) in handlers.items():
                stage = KafkaStage(
                    settings=settings(service), service=service, topics=topics, handler=handler
                )
                await stage.start()
                running.append(stage)
            yield settings("client")
            for stage in running:
                await stage.stop()
            running.clear()
    finally:
        for stage in running:
            await stage.stop()
        await catalog.close()


def _span(spans: tuple[ReadableSpan, ...], service: str, topic: str) -> ReadableSpan | None:
    return next(
        (
            s
            for s in spans
            if s.attributes is not None
            and s.attributes.get("exportwatch.service") == service
            and s.attributes.get("messaging.destination.name") == topic
        ),
        None,
    )


def _of(spans: tuple[ReadableSpan, ...], service: str) -> list[ReadableSpan]:
    return [s for s in spans if (s.attributes or {}).get("exportwatch.service") == service]


async def test_one_order_is_one_trace_from_submit_to_recorded(
    stages: Settings, spans: InMemorySpanExporter
) -> None:
    settings = stages
    async with OrderPublisher(
        settings.kafka_bootstrap_servers,
        topic_prefix=settings.topic_prefix,
        **{k: v for k, v in client_options(client_settings(settings)).items() if k != "bootstrap_servers"},
    ) as publisher:
        await publisher.publish(ORDER)

    decided = settings.topic(TOPIC_DECIDED)

    def recorded_all() -> bool:
        found = spans.get_finished_spans()
        return _span(found, "records", decided) is not None and len(_of(found, "records")) >= 4

    await wait_for(recorded_all, timeout=90, what="records' spans of the four steps")
    finished = spans.get_finished_spans()
    chain = [
        _span(finished, "client", settings.topic(TOPIC_SUBMITTED)),
        _span(finished, "classifier", settings.topic(TOPIC_SUBMITTED)),
        _span(finished, "screening", settings.topic(TOPIC_CLASSIFIED)),
        _span(finished, "risk", settings.topic(TOPIC_SCREENED)),
        _span(finished, "records", decided),
    ]
    assert all(chain), [s.name for s in finished]
    submit, classified, screened, decided_span, recorded = [s for s in chain if s is not None]
    assert submit.name == f"send {settings.topic(TOPIC_SUBMITTED)}" and submit.parent is None
    trace_id = submit.context.trace_id
    assert {s.context.trace_id for s in chain if s is not None} == {trace_id}
    # Each stage's span is the child of the span that produced what it read.
    for parent, child in itertools.pairwise(chain):
        assert parent is not None and child is not None and child.parent is not None
        assert child.parent.span_id == parent.context.span_id, (child.name, parent.name)
    assert all(
        s.attributes is not None and s.attributes.get("messaging.kafka.message.key") == ORDER["order_id"]
        for s in chain
        if s is not None
    )
    # records read every stage's event of the order: each of its spans is in the same trace.
    recorded_spans = _of(finished, "records")
    assert len(recorded_spans) == 4 and {s.context.trace_id for s in recorded_spans} == {trace_id}
    assert recorded.parent is not None and decided_span.context.span_id == recorded.parent.span_id
    assert screened.parent is not None and classified.context.span_id == screened.parent.span_id


async def test_a_shipment_sent_by_the_client_carries_its_trace_context(
    kafka_bootstrap: str, spans: InMemorySpanExporter
) -> None:
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=1)
    async with OrderPublisher(kafka_bootstrap, topic_prefix=prefix) as publisher:
        sent = await publisher.publish_shipment(shipped(submitted("SO-2026-000901")))
    span = _span(spans.get_finished_spans(), "client", sent.topic)
    assert span is not None and span.name == f"send {sent.topic}"
    consumer = AIOKafkaConsumer(
        sent.topic, auto_offset_reset="earliest", **client_options(client_settings(kafka_bootstrap))
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    headers = dict(record.headers)
    trace_id = f"{span.context.trace_id:032x}"
    assert trace_id in headers["traceparent"].decode("latin-1"), headers
