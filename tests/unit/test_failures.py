"""Which failures are transient (shared/failures.py), and what the consumer loop does with each: a
dependency that is away is waited for without limit, anything else is dead-lettered after
`max_attempts` (risk must not dead-letter valid orders while its database is away)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, cast

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, NodeNotReadyError
from sqlalchemy.exc import IntegrityError, OperationalError

from shared.failures import is_transient, unavailable_dependency
from shared.kafka import ConsumerRunner, Incoming, Outgoing
from shared.settings import Settings


def _raised_from(cause: BaseException) -> RuntimeError:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise RuntimeError("while settling the ledger") from exc
    except RuntimeError as outer:
        return outer


class _PostgresError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("exc", "away"),
    [
        (OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "refused")), "the database"),
        (_PostgresError("57P01"), "the database"),  # admin shutdown
        (_PostgresError("08006"), "the database"),  # connection failure
        (_PostgresError("40001"), "the database"),  # serialization failure
        (KafkaConnectionError("no broker"), "the Kafka broker"),
        (NodeNotReadyError("node 1"), "the Kafka broker"),
        (ConnectionResetError(104, "reset"), "a service it depends on"),
        (_raised_from(OperationalError("SELECT 1", {}, OSError("gone"))), "the database"),
    ],
)
def test_a_dependency_that_is_away_is_transient_and_named(exc: BaseException, away: str) -> None:
    assert is_transient(exc)
    assert unavailable_dependency(exc) == away


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("a bug"),
        KeyError("line"),
        IntegrityError("INSERT", {}, Exception("duplicate key")),
        _PostgresError("23505"),  # unique violation: the same on every retry
        MessageSizeTooLargeError(),
        FileNotFoundError(2, "no such file"),
        PermissionError(13, "denied"),
    ],
)
def test_anything_else_is_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc) and unavailable_dependency(exc) is None


def _runner(handler: Callable[[Incoming], Any], max_attempts: int = 3) -> ConsumerRunner:
    return ConsumerRunner(
        settings=Settings(kafka_retry_backoff_max_s=0.01),
        service="risk",
        topics=["orders.screened.v1"],
        handler=handler,
        producer=cast(Any, None),
        max_attempts=max_attempts,
    )


def _failing(failures: list[BaseException]) -> tuple[Callable[[Incoming], Any], list[int]]:
    calls = [0]

    async def handler(message: Incoming) -> list[Outgoing]:
        calls[0] += 1
        if failures:
            raise failures.pop(0)
        return [Outgoing("orders.decided.v1", "SO-1", b"{}")]

    return handler, calls


MESSAGE = Incoming("orders.screened.v1", 0, 5, b"SO-1", b"{}", 0)


async def test_a_database_outage_is_waited_out_past_max_attempts_and_the_order_is_decided() -> None:
    outage = [OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "refused")) for _ in range(12)]
    handler, calls = _failing(list(outage))
    outputs = await asyncio.wait_for(_runner(handler)._handle_with_retry(MESSAGE), timeout=10)
    assert outputs == [Outgoing("orders.decided.v1", "SO-1", b"{}")]
    assert calls[0] == 13  # twelve transient failures (four times max_attempts), then success


async def test_other_failures_count_towards_max_attempts_and_then_dead_letter() -> None:
    handler, calls = _failing([ValueError("a bug")] * 10)
    outputs = await asyncio.wait_for(_runner(handler)._handle_with_retry(MESSAGE), timeout=10)
    assert calls[0] == 3 and outputs is not None and len(outputs) == 1
    letter = json.loads(outputs[0].value)
    assert (letter["error_type"], letter["error"]) == ("HandlerError", "ValueError: a bug")


async def test_transient_failures_in_between_do_not_count() -> None:
    refused = OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "refused"))
    handler, calls = _failing([ValueError("1"), refused, refused, ValueError("2"), refused, ValueError("3")])
    outputs = await asyncio.wait_for(_runner(handler)._handle_with_retry(MESSAGE), timeout=10)
    assert calls[0] == 6 and outputs is not None
    assert json.loads(outputs[0].value)["error"] == "ValueError: 3"
