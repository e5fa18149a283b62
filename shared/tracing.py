"""Traces across the Kafka hops and the HTTP APIs: one order is one trace, submit → classified →
screened → decided → recorded.

The W3C trace context (`traceparent`, `tracestate`; https://www.w3.org/TR/trace-context/) travels in
Kafka record headers and HTTP headers. The consumer loop (shared/kafka.py) calls `consuming` for each
record when tracing is on: a CONSUMER span whose parent is the context in the record's headers, and
the headers to put on everything the handler produces (its events and dead letters alike); off, it
only copies the record's trace headers (`passed_on`). `build_app` adds
`TraceRequests` for the HTTP side, and `Bus.publish` sends the current context with an HTTP
command's event. `producing` starts a trace where an order enters (the order publisher of
exportwatch/client.py, `exportwatch submit`).

Off by default (`EXPORTWATCH_OTEL_EXPORTER=none`): no SDK is installed, no span is made, and a
record's trace headers are copied to what the handler produces as they came, so a trace begun by an
ERP goes on through the services that do not export. `otlp` exports spans in batches over OTLP/HTTP
to `EXPORTWATCH_OTEL_ENDPOINT` (default: the exporter's own, http://localhost:4318/v1/traces, or
OTEL_EXPORTER_OTLP_ENDPOINT); `console` prints them (debugging).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

# A Kafka record's headers as aiokafka gives and takes them.
Headers = tuple[tuple[str, bytes], ...]
EXPORTERS = ("none", "otlp", "console")
TRACE_HEADERS = frozenset({"traceparent", "tracestate"})
INSTRUMENTATION = "exportwatch"
_PROPAGATOR = TraceContextTextMapPropagator()
# Ops endpoints are polled every few seconds by probes and Prometheus: no span for them.
_UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

# The tracer of this process once `configure` (or `install`) set one up; None: tracing is off.
_tracer: Tracer | None = None
_provider: TracerProvider | None = None


class _HeaderGetter(Getter[Headers]):
    def get(self, carrier: Headers, key: str) -> list[str] | None:
        values = [value.decode("latin-1") for name, value in carrier if name == key]
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [name for name, _ in carrier]


class _AsgiGetter(Getter[Scope]):
    def get(self, carrier: Scope, key: str) -> list[str] | None:
        wanted = key.encode("latin-1")
        values = [v.decode("latin-1") for k, v in carrier.get("headers", ()) if k.lower() == wanted]
        return values or None

    def keys(self, carrier: Scope) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier.get("headers", ())]


_KAFKA = _HeaderGetter()
_HTTP = _AsgiGetter()


def enabled() -> bool:
    return _tracer is not None


def configure(*, service: str, exporter: str, endpoint: str | None = None) -> None:
    """Set up this process's tracing (a service at start, the CLI): nothing for `none`."""
    if exporter == "none":
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter: SpanExporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
    elif exporter == "console":
        span_exporter = ConsoleSpanExporter()
    else:
        raise ValueError(f"EXPORTWATCH_OTEL_EXPORTER={exporter!r}: use {', '.join(EXPORTERS)}")
    provider = TracerProvider(resource=Resource.create({"service.name": f"exportwatch-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    install(provider)


def install(provider: TracerProvider | None) -> None:
    """Use `provider` for every span of this process (None: off again). Tests install one with an
    in-memory exporter; `configure` installs the exporting one. The global OpenTelemetry provider is
    left alone: it can be set once per process, and an application embedding the client owns it."""
    global _tracer, _provider
    _provider = provider
    _tracer = provider.get_tracer(INSTRUMENTATION) if provider is not None else None


def shutdown() -> None:
    """Flush and stop the exporter (a service at exit; batched spans are not lost)."""
    if _provider is not None:
        _provider.shutdown()


def _headers_of(context: Context | None = None) -> Headers:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return tuple((name, value.encode("latin-1")) for name, value in carrier.items())


def current_headers() -> Headers:
    """The trace context of the current span (an HTTP request's), for an event published now."""
    return _headers_of() if _tracer is not None else ()


def passed_on(headers: Headers) -> Headers:
    """Tracing off: the record's own trace headers, for what it produces (nothing else is copied)."""
    return tuple(h for h in headers if h[0] in TRACE_HEADERS) if headers else ()


@contextmanager
def consuming(
    service: str, topic: str, partition: int, offset: int, key: bytes | None, headers: Headers
) -> Iterator[Headers]:
    """Around the handling of one Kafka record: its span, and the headers for what it produces.

    Tracing off, the record's own trace headers are passed on unchanged (no span, no context)."""
    if _tracer is None:
        yield passed_on(headers)
        return
    parent = _PROPAGATOR.extract(headers, getter=_KAFKA) if headers else None
    with _tracer.start_as_current_span(
        f"process {topic}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=_consumer_attributes(service, topic, partition, offset, key),
    ):
        yield _headers_of()


@contextmanager
def consuming_all(service: str, records: Sequence[Consumed]) -> Iterator[list[Headers]]:
    """Around the handling of a whole poll at once: one span per record, each the child of its
    record's context and open while the poll is handled, and for each record the headers for what
    it produces. Tracing off, each record's own trace headers are passed on unchanged."""
    if _tracer is None:
        yield [passed_on(record.headers) for record in records]
        return
    spans = [
        _tracer.start_span(
            f"process {record.topic}",
            context=_PROPAGATOR.extract(record.headers, getter=_KAFKA) if record.headers else None,
            kind=SpanKind.CONSUMER,
            attributes=_consumer_attributes(
                service, record.topic, record.partition, record.offset, record.key
            ),
        )
        for record in records
    ]
    try:
        yield [_headers_of(trace.set_span_in_context(span)) for span in spans]
    except BaseException as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        for span in spans:
            span.end()


class Consumed(Protocol):
    """What a span of a consumed record is made from (shared/kafka.py's Incoming)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def headers(self) -> Headers: ...


def _consumer_attributes(
    service: str, topic: str, partition: int, offset: int, key: bytes | None
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": str(partition),
        "messaging.kafka.offset": offset,
        "messaging.consumer.group.name": service,
        "exportwatch.service": service,
    }
    if key is not None:
        attributes["messaging.kafka.message.key"] = key.decode("utf-8", "replace")
    return attributes


@contextmanager
def producing(topic: str, key: str, *, service: str = "client") -> Iterator[Headers]:
    """Around publishing one event where a trace begins (an order entering the pipeline): a PRODUCER
    span, and the headers to send with the event. Tracing off in this process, the application's
    own OpenTelemetry set-up (the global provider) is used; without one there is nothing to send."""
    tracer = _tracer if _tracer is not None else trace.get_tracer(INSTRUMENTATION)
    with tracer.start_as_current_span(
        f"send {topic}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.kafka.message.key": key,
            "exportwatch.service": service,
        },
    ) as span:
        yield _headers_of() if span.get_span_context().is_valid else ()


def headers_for(headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None) -> Headers:
    """aiokafka's record headers (a sequence of pairs) as `Headers`."""
    if not headers:
        return ()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((str(name), bytes(value)) for name, value in pairs)


class TraceRequests:
    """A SERVER span per HTTP request, child of the caller's `traceparent` if it sent one; named after
    the route template (`POST /orders/{order_id}/review`), not the path, so names stay few."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = _tracer
        if tracer is None or scope["type"] != "http" or scope.get("path") in _UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        with tracer.start_as_current_span(
            f"{method} {scope.get('path', '')}",
            context=_PROPAGATOR.extract(scope, getter=_HTTP),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": scope.get("path", ""),
                "exportwatch.service": self.service,
            },
        ) as span:
            status: list[int] = []

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status.append(int(message["status"]))
                await send(message)

            try:
                await self.app(scope, receive, send_traced)
            finally:
                route = scope.get("route")
                if route is not None and hasattr(route, "path"):
                    span.update_name(f"{method} {route.path}")
                    span.set_attribute("http.route", route.path)
                if status:
                    span.set_attribute("http.response.status_code", status[0])
                    if status[0] >= 500:
                        span.set_status(Status(StatusCode.ERROR))
