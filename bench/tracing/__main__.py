"""`python -m bench tracing`: what carrying the trace context costs the consumer loop per record.

The loop's per-record step (`ConsumerRunner._handle_with_retry`: log context, the trace context,
the handler, the outputs given the record's headers) is run on the same records with a handler that
returns one output and does nothing else, so the difference is the loop's own overhead:

- baseline: the handler called directly (no loop step at all);
- loop without tracing: the step as it was before trace context existed (log context, metrics,
  the handler), so the rows below show what tracing adds to it;
- off, no headers: tracing off (the default), a record without trace headers;
- off, traceparent: tracing off, a record carrying `traceparent` (passed on unchanged);
- on: an SDK tracer with a span processor that drops spans (what the OTLP exporter costs beyond
  the network is its batching thread, not measured here).

Rounds are interleaved (baseline, off, off+headers, on, baseline, ...) so a busy machine shifts all
alike; each figure is the median of the rounds, in microseconds per record, and as a ratio to the
baseline.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from bench import write_results
from shared import tracing
from shared.kafka import ConsumerRunner, Incoming, Outgoing
from shared.logging import log_context
from shared.settings import Settings

RECORDS = 20_000
ROUNDS = 7
TRACEPARENT = (("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),)


class _Drop(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        return None


async def _handler(message: Incoming) -> Sequence[Outgoing]:
    return [Outgoing("orders.classified.v1", "SO-1", b"{}")]


def _records(headers: tracing.Headers) -> list[Incoming]:
    return [Incoming("orders.submitted.v1", 0, n, b"SO-1", b"{}", 0, headers) for n in range(RECORDS)]


async def _time(step: Callable[[Incoming], Awaitable[object]], records: list[Incoming]) -> float:
    started = time.perf_counter()
    for record in records:
        await step(record)
    return (time.perf_counter() - started) / len(records) * 1e6


async def _measure() -> dict[str, list[float]]:
    runner = ConsumerRunner(
        settings=Settings(), service="bench", topics=["orders.submitted.v1"], handler=_handler, producer=None
    )
    bare, carrying = _records(()), _records(TRACEPARENT)
    provider = TracerProvider()
    provider.add_span_processor(_Drop())
    rounds: dict[str, list[float]] = {
        "baseline": [], "loop without tracing": [], "off, no headers": [], "off, traceparent": [], "on": [],
    }  # fmt: skip

    async def untraced(message: Incoming) -> object:
        with log_context(order_id="SO-1", event_id=None):
            return await runner._attempts(message)

    for _ in range(ROUNDS):
        rounds["baseline"].append(await _time(_handler, bare))
        rounds["loop without tracing"].append(await _time(untraced, bare))
        rounds["off, no headers"].append(await _time(runner._handle_with_retry, bare))
        rounds["off, traceparent"].append(await _time(runner._handle_with_retry, carrying))
        tracing.install(provider)
        try:
            rounds["on"].append(await _time(runner._handle_with_retry, carrying))
        finally:
            tracing.install(None)
    return rounds


def main(argv: list[str]) -> int:
    rounds = asyncio.run(_measure())
    baseline = statistics.median(rounds["baseline"])
    results = {
        name: {
            "us_per_record": round(statistics.median(v), 2),
            "ratio_to_baseline": round(statistics.median(v) / baseline, 2),
        }
        for name, v in rounds.items()
    }
    path = write_results("tracing", {"records": RECORDS, "rounds": ROUNDS, "results": results})
    print("| loop step | µs per record (median of rounds) | × baseline |")
    print("| --- | ---: | ---: |")
    for name, figures in results.items():
        print(f"| {name} | {figures['us_per_record']} | {figures['ratio_to_baseline']} |")
    print(f"(results: {path})")
    return 0
