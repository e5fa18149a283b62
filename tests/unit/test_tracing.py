"""Trace context through the consumer loop and the HTTP scaffold (shared/tracing.py): with tracing off
the record's trace headers pass through untouched and nothing else is added; with a tracer, the
handler's outputs (dead letters too) carry the context of a span that is the child of the record's,
and an HTTP request's span is named after its route and continues the caller's trace."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared import tracing
from shared.kafka import ConsumerRunner, Incoming, Outgoing, PoisonMessage
from shared.service import ServiceSpec, build_app
from shared.settings import Settings
from tests.auth_support import bearer

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


async def _echo(message: Incoming) -> Sequence[Outgoing]:
    if message.value == b"poison":
        raise PoisonMessage("InvalidJson", "not JSON")
    return [Outgoing("orders.classified.v1", "SO-1", b"{}"), Outgoing("orders.other.v1", "SO-1", b"{}")]


def _runner() -> ConsumerRunner:
    return ConsumerRunner(
        settings=Settings(),
        service="classifier",
        topics=["orders.submitted.v1"],
        handler=_echo,
        producer=None,
    )


def _message(value: bytes = b"{}", headers: tracing.Headers = ()) -> Incoming:
    return Incoming("orders.submitted.v1", 2, 41, b"SO-1", value, 0, headers)


def _traceparent(out: Outgoing) -> str:
    return dict(out.headers)["traceparent"].decode()


async def test_tracing_off_passes_the_records_trace_headers_on_and_adds_nothing() -> None:
    assert not tracing.enabled()
    carried = (("traceparent", TRACEPARENT.encode()), ("tracestate", b"erp=1"))
    outputs = await _runner()._handle_with_retry(_message(headers=(("x-erp-batch", b"7"), *carried)))
    assert outputs is not None and [o.headers for o in outputs] == [carried, carried]
    bare = await _runner()._handle_with_retry(_message())
    assert bare is not None and [o.headers for o in bare] == [(), ()]


async def test_outputs_and_dead_letters_continue_the_records_trace_in_a_child_span(
    spans: InMemorySpanExporter,
) -> None:
    runner = _runner()
    outputs = await runner._handle_with_retry(_message(headers=(("traceparent", TRACEPARENT.encode()),)))
    [letter] = (
        await runner._handle_with_retry(_message(b"poison", (("traceparent", TRACEPARENT.encode()),))) or []
    )
    assert outputs is not None and len({_traceparent(o) for o in outputs}) == 1
    assert letter.topic == "orders.deadletter.v1"
    processed, failed = spans.get_finished_spans()
    for span, out in ((processed, outputs[0]), (failed, letter)):
        assert span.kind == SpanKind.CONSUMER and span.name == "process orders.submitted.v1"
        assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_ID
        assert format(span.context.trace_id, "032x") == TRACE_ID
        # What the record produced names this span as its parent, in the same trace.
        _, trace_id, parent_id, _ = _traceparent(out).split("-")
        assert (trace_id, parent_id) == (TRACE_ID, format(span.context.span_id, "016x"))
    assert processed.attributes is not None
    assert processed.attributes["messaging.kafka.message.key"] == "SO-1"
    assert processed.attributes["messaging.kafka.offset"] == 41


async def test_a_record_without_trace_context_starts_a_trace(spans: InMemorySpanExporter) -> None:
    outputs = await _runner()._handle_with_retry(_message())
    [span] = spans.get_finished_spans()
    assert span.parent is None and outputs is not None
    assert _traceparent(outputs[0]).split("-")[1] == format(span.context.trace_id, "032x")


router = APIRouter()


@router.get("/orders/{order_id}")
async def order(order_id: str) -> dict[str, str]:
    return {"order_id": order_id}


@asynccontextmanager
async def _runtime(settings: Settings, publish: Any) -> AsyncIterator[str]:
    yield "loaded"


SPEC = ServiceSpec(
    name="tiny",
    title="tiny",
    summary="a tiny service",
    router=router,
    open_runtime=_runtime,
    describe=lambda runtime: {},
    not_ready="not yet",
)


async def test_http_requests_continue_the_callers_trace_in_a_span_named_after_the_route(
    spans: InMemorySpanExporter,
) -> None:
    app = build_app(SPEC, Settings(), start_kafka=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        answered = await client.get("/orders/SO-9", headers={**bearer(), "traceparent": TRACEPARENT})
        refused = await client.get("/orders/SO-9")
        await client.get("/healthz")
    assert (answered.status_code, refused.status_code) == (200, 401)
    served, unauthenticated = spans.get_finished_spans()
    assert served.kind == SpanKind.SERVER and served.name == "GET /orders/{order_id}"
    assert served.parent is not None and format(served.parent.span_id, "016x") == PARENT_ID
    assert served.attributes is not None and served.attributes["http.response.status_code"] == 200
    # Refused before routing: named by its path, its own trace; /healthz makes no span at all.
    assert unauthenticated.parent is None and unauthenticated.attributes is not None
    assert unauthenticated.attributes["http.response.status_code"] == 401


def test_otlp_export_is_set_up_by_setting_and_a_bad_endpoint_is_refused_by_name() -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from pydantic import ValidationError

    settings = Settings(otel_exporter="otlp", otel_endpoint="http://collector:4318/v1/traces")
    tracing.configure(service="risk", exporter=settings.otel_exporter, endpoint=settings.otel_endpoint)
    try:
        assert tracing.enabled()
        provider = tracing._provider
        assert provider is not None and provider.resource.attributes["service.name"] == "exportwatch-risk"
        [processor] = provider._active_span_processor._span_processors
        exporter = processor._batch_processor._exporter  # type: ignore[attr-defined]
        assert isinstance(exporter, OTLPSpanExporter) and exporter._endpoint == settings.otel_endpoint
    finally:
        tracing.shutdown()
        tracing.install(None)
    tracing.configure(service="risk", exporter="none")
    assert not tracing.enabled()
    with pytest.raises(ValidationError, match="EXPORTWATCH_OTEL_ENDPOINT='collector:4318'"):
        Settings(otel_endpoint="collector:4318")
    with pytest.raises(ValidationError, match="otel_exporter"):
        Settings(otel_exporter="jaeger")
