"""Prometheus metrics shared by every service; the `service` label tells them apart."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

EVENTS_IN = Counter("exportwatch_events_in_total", "Events consumed", ["service", "topic"])
EVENTS_OUT = Counter("exportwatch_events_out_total", "Events produced and acknowledged", ["service", "topic"])
DEAD_LETTERED = Counter(
    "exportwatch_events_deadlettered_total",
    "Events sent to the dead-letter topic",
    ["service", "topic", "error_type"],
)
HANDLER_ERRORS = Counter(
    "exportwatch_handler_errors_total", "Handler failures that were retried", ["service", "topic"]
)
HANDLER_LATENCY = Histogram(
    "exportwatch_handler_seconds",
    "Time to handle one event (parse, decide, produce)",
    ["service", "topic"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CONSUMER_LAG = Gauge(
    "exportwatch_consumer_lag",
    "High watermark minus position, per partition",
    ["service", "topic", "partition"],
)
DECISIONS = Counter("exportwatch_decisions_total", "Decisions made", ["decision"])


def render() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
