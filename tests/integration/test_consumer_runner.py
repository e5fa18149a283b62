"""The shared consumer loop against the real broker: dead letters, commits, retries."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import GroupCoordinatorNotAvailableError, KafkaTimeoutError

from shared.codec import decode_json
from shared.events import TOPIC_CLASSIFIED, TOPIC_DEADLETTER, TOPIC_SCREENED, TOPIC_SUBMITTED, SubmittedOrder
from shared.kafka import ConsumerRunner, Incoming, Outgoing, make_producer
from shared.service import KafkaStage
from shared.settings import Settings, load_settings
from tests.integration.kafka_helpers import (
    committed_offsets,
    create_prefixed_topics,
    publish,
    read_topic,
    unique_prefix,
    wait_for,
)

pytestmark = pytest.mark.integration


def order(order_id: str, **changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "schema": "order.submitted.v1",
        "event_id": str(uuid.uuid4()),
        "order_id": order_id,
        "occurred_at": "2026-11-30T12:00:00Z",
        "source": "erp-test",
        "ship_from_country": "US",
        "destination_country": "DE",
        "parties": [{"role": "buyer", "name": "Muster Maschinenbau GmbH", "country": "DE"}],
        "lines": [
            {
                "line_no": 1,
                "sku": "X-1",
                "description": "Hydraulic pump",
                "quantity": 1,
                "unit_price": "10.00",
                "currency": "USD",
            }
        ],
    }
    base.update(changes)
    return base


class EchoHandler:
    """Validates the input contract and echoes the order id; fails transiently where told to."""

    def __init__(self, out_topic: str, fail_times: dict[str, int] | None = None) -> None:
        self.out_topic = out_topic
        self.fail_times = dict(fail_times or {})
        self.calls = 0

    async def __call__(self, message: Incoming) -> Sequence[Outgoing]:
        self.calls += 1
        submitted = SubmittedOrder.model_validate(decode_json(message))
        if self.fail_times.get(submitted.order_id, 0) > 0:
            self.fail_times[submitted.order_id] -= 1
            raise ConnectionError("database is away")
        body = json.dumps({"order_id": submitted.order_id, "event_id": submitted.event_id}).encode()
        return [Outgoing(topic=self.out_topic, key=submitted.order_id, value=body)]


async def test_bad_messages_are_dead_lettered_and_the_loop_goes_on(kafka_bootstrap: str) -> None:
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix)
    settings = load_settings("runner-test", kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    handler = EchoHandler(settings.topic(TOPIC_CLASSIFIED), fail_times={"SO-RETRY": 2})
    stage = KafkaStage(settings=settings, service="runner-test", topics=[TOPIC_SUBMITTED], handler=handler)
    await stage.start()
    try:
        await publish(
            kafka_bootstrap,
            settings.topic(TOPIC_SUBMITTED),
            [
                ("SO-BAD-JSON", b'{"schema": "order.submitted.v1", "order_id": '),
                ("SO-BAD-COUNTRY", json.dumps(order("SO-BAD-COUNTRY", destination_country="XX")).encode()),
                ("SO-BAD-BYTES", b"\xff\xfe\x00garbage"),
                ("SO-GOOD", json.dumps(order("SO-GOOD")).encode()),
                ("SO-RETRY", json.dumps(order("SO-RETRY")).encode()),
            ],
        )
        letters = await read_topic(kafka_bootstrap, settings.topic(TOPIC_DEADLETTER), expect=3)
        outputs = await read_topic(kafka_bootstrap, settings.topic(TOPIC_CLASSIFIED), expect=2)
        ready, detail = stage.ready()
        assert ready, detail
    finally:
        await stage.stop()

    by_type = {letter["error_type"]: letter for letter in letters}
    assert set(by_type) == {"InvalidJson", "SchemaValidationError", "InvalidEncoding"}
    invalid = by_type["SchemaValidationError"]
    assert "destination_country" in invalid["error"] and "'XX'" in invalid["error"]
    assert invalid["source_topic"] == settings.topic(TOPIC_SUBMITTED)
    assert json.loads(base64.b64decode(invalid["payload_b64"]))["destination_country"] == "XX"
    assert base64.b64decode(by_type["InvalidEncoding"]["payload_b64"]) == b"\xff\xfe\x00garbage"
    assert sorted(o["order_id"] for o in outputs) == ["SO-GOOD", "SO-RETRY"]

    # Offsets were committed past every message, bad ones included: a restart does not redo them.
    committed = await committed_offsets(kafka_bootstrap, "runner-test", settings.topic(TOPIC_SUBMITTED))
    assert sum(committed.values()) == 5


async def _one_order_waiting(
    kafka_bootstrap: str, service: str, order_id: str
) -> tuple[Settings, dict[str, object]]:
    """Topics of one partition under a fresh prefix, and one order published on the input topic."""
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=1)
    settings = load_settings(service, kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    the_order = order(order_id)
    await publish(
        kafka_bootstrap, settings.topic(TOPIC_SUBMITTED), [(order_id, json.dumps(the_order).encode())]
    )
    return settings, the_order


async def _redone_by_a_new_stage(
    kafka_bootstrap: str, settings: Settings, service: str
) -> tuple[EchoHandler, list[dict[str, Any]]]:
    """A new stage in the same group (the next owner) started until one output is read."""
    handler = EchoHandler(settings.topic(TOPIC_CLASSIFIED))
    stage = KafkaStage(settings=settings, service=service, topics=[TOPIC_SUBMITTED], handler=handler)
    await stage.start()
    try:
        outputs = await read_topic(kafka_bootstrap, settings.topic(TOPIC_CLASSIFIED), expect=1)
    finally:
        await stage.stop()
    return handler, outputs


async def test_redelivery_after_a_crash_before_commit_reproduces_the_same_output(
    kafka_bootstrap: str,
) -> None:
    """At-least-once: if the process dies before committing, the next one redoes the work."""
    settings, the_order = await _one_order_waiting(kafka_bootstrap, "redelivery-test", "SO-REDELIVER")

    class CrashAfterPublish(EchoHandler):
        async def __call__(self, message: Incoming) -> Sequence[Outgoing]:
            outs = await super().__call__(message)
            if self.calls == 1:
                # Simulate a crash: the stage is stopped before this batch can commit.
                asyncio.get_running_loop().call_soon(stage.runner.stop_event.set)  # type: ignore[union-attr]
                raise asyncio.CancelledError
            return outs

    first = CrashAfterPublish(settings.topic(TOPIC_CLASSIFIED))
    stage = KafkaStage(settings=settings, service="redelivery-test", topics=[TOPIC_SUBMITTED], handler=first)
    await stage.start()
    await wait_for(lambda: first.calls >= 1, timeout=30, what="first delivery")
    await stage.stop()
    committed = await committed_offsets(kafka_bootstrap, "redelivery-test", settings.topic(TOPIC_SUBMITTED))
    assert committed == {}

    second, outputs = await _redone_by_a_new_stage(kafka_bootstrap, settings, "redelivery-test")
    assert [o["event_id"] for o in outputs] == [the_order["event_id"]]
    assert second.calls == 1


async def test_a_stage_stuck_on_stop_is_cancelled_and_its_message_read_again(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that never returns must not hold the service's shutdown past its grace period:
    the stage is cancelled after STAGE_STOP_S, nothing is committed, the next owner redoes it."""
    import shared.service

    monkeypatch.setattr(shared.service, "STAGE_STOP_S", 1.0)
    settings, the_order = await _one_order_waiting(kafka_bootstrap, "stuck-test", "SO-STUCK")

    class Stuck(EchoHandler):
        async def __call__(self, message: Incoming) -> Sequence[Outgoing]:
            self.calls += 1
            await asyncio.Event().wait()  # a dependency that never answers
            raise AssertionError("unreachable")

    stuck = Stuck(settings.topic(TOPIC_CLASSIFIED))
    stage = KafkaStage(settings=settings, service="stuck-test", topics=[TOPIC_SUBMITTED], handler=stuck)
    await stage.start()
    await wait_for(lambda: stuck.calls >= 1, timeout=30, what="the stuck handler called")
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="exportwatch.service"):
        await stage.stop()
    assert time.monotonic() - started < 8.0
    assert stage._task is not None and stage._task.done()
    assert "did not stop within 1s; cancelled it" in caplog.text
    assert await committed_offsets(kafka_bootstrap, "stuck-test", settings.topic(TOPIC_SUBMITTED)) == {}

    _, outputs = await _redone_by_a_new_stage(kafka_bootstrap, settings, "stuck-test")
    assert [o["event_id"] for o in outputs] == [the_order["event_id"]]


async def test_a_stage_whose_last_delivery_never_lands_still_stops(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A commit that never answers (a coordinator lost while stopping) must not hold the shutdown
    either: the loop waits LAND_ON_STOP_S for its last delivery, then stops without committing."""
    import shared.kafka
    import shared.service

    monkeypatch.setattr(shared.service, "STAGE_STOP_S", 1.0)
    monkeypatch.setattr(shared.kafka, "LAND_ON_STOP_S", 1.0)
    settings, _ = await _one_order_waiting(kafka_bootstrap, "unlanded-test", "SO-UNLANDED")
    committing = asyncio.Event()

    async def never_answers(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        committing.set()
        await asyncio.Event().wait()

    handler = EchoHandler(settings.topic(TOPIC_CLASSIFIED))
    stage = KafkaStage(settings=settings, service="unlanded-test", topics=[TOPIC_SUBMITTED], handler=handler)
    await stage.start()
    await wait_for(lambda: stage.runner is not None, timeout=10, what="the runner made")
    assert stage.runner is not None
    monkeypatch.setattr(stage.runner, "_commit", never_answers)
    await asyncio.wait_for(committing.wait(), timeout=30)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        await asyncio.wait_for(stage.stop(), timeout=30)  # fails here, not by hanging the suite
    assert time.monotonic() - started < 10.0
    assert stage._task is not None and stage._task.done()
    assert "did not end within 1s of stopping; not committed" in caplog.text
    assert await committed_offsets(kafka_bootstrap, "unlanded-test", settings.topic(TOPIC_SUBMITTED)) == {}


async def test_a_stage_waits_for_a_broker_that_is_away_and_works_once_it_appears(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from deploy.kafka.broker import KafkaBroker, free_port

    port, controller_port = free_port(), free_port()
    settings = load_settings(
        "late-broker-test", kafka_bootstrap_servers=f"127.0.0.1:{port}", kafka_retry_backoff_max_s=1.0
    )
    handler = EchoHandler(settings.topic(TOPIC_CLASSIFIED))
    stage = KafkaStage(
        settings=settings, service="late-broker-test", topics=[TOPIC_SUBMITTED], handler=handler
    )
    await stage.start()
    broker: KafkaBroker | None = None
    try:
        await asyncio.sleep(1.5)  # the stage is retrying against a closed port, not crashing
        ready, detail = stage.ready()
        assert not ready and detail["producer_connected"] is False
        assert stage._task is not None and not stage._task.done()

        root = tmp_path_factory.mktemp("late-broker")
        broker = await asyncio.to_thread(
            KafkaBroker.start, data_dir=root / "data", port=port, controller_port=controller_port
        )
        await create_prefixed_topics(broker.bootstrap_servers, "", partitions=1)
        await wait_for(lambda: stage.ready()[0], timeout=60, what="stage ready once the broker is up")
        await publish(
            broker.bootstrap_servers, TOPIC_SUBMITTED, [("SO-LATE", json.dumps(order("SO-LATE")).encode())]
        )
        outputs = await read_topic(broker.bootstrap_servers, TOPIC_CLASSIFIED, expect=1)
        assert [o["order_id"] for o in outputs] == ["SO-LATE"]
    finally:
        await stage.stop()
        if broker is not None:
            await asyncio.to_thread(broker.stop)


class BatchEchoHandler(EchoHandler):
    """EchoHandler that also takes whole polls: it leaves the messages it cannot validate to the
    one-at-a-time path (None), and fails its first `fail_batches` polls as a whole."""

    def __init__(self, out_topic: str, fail_batches: int) -> None:
        super().__init__(out_topic)
        self.fail_batches = fail_batches
        self.batches: list[int] = []
        self.batched: list[str] = []

    async def handle_batch(self, messages: Sequence[Incoming]) -> list[list[Outgoing] | None]:
        self.batches.append(len(messages))
        if self.fail_batches > 0:
            self.fail_batches -= 1
            raise ConnectionError("database is away for the whole poll")
        results: list[list[Outgoing] | None] = []
        for message in messages:
            try:
                submitted = SubmittedOrder.model_validate(decode_json(message))
            except Exception:
                results.append(None)
                continue
            self.batched.append(submitted.order_id)
            body = json.dumps({"order_id": submitted.order_id, "via": "batch"}).encode()
            results.append([Outgoing(topic=self.out_topic, key=submitted.order_id, value=body)])
        return results


@pytest.mark.parametrize("fail_batches", [0, 1])
async def test_a_batch_handler_takes_whole_polls_and_leaves_bad_messages_to_the_one_by_one_path(
    kafka_bootstrap: str, fail_batches: int
) -> None:
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=1)
    settings = load_settings("batch-test", kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    handler = BatchEchoHandler(settings.topic(TOPIC_CLASSIFIED), fail_batches=fail_batches)
    good = [f"SO-BATCH-{n}" for n in range(6)]
    # Published before the stage starts: its first poll holds them all.
    await publish(
        kafka_bootstrap,
        settings.topic(TOPIC_SUBMITTED),
        [(order_id, json.dumps(order(order_id)).encode()) for order_id in good[:3]]
        + [("SO-BAD-COUNTRY", json.dumps(order("SO-BAD-COUNTRY", destination_country="XX")).encode())]
        + [(order_id, json.dumps(order(order_id)).encode()) for order_id in good[3:]],
    )
    stage = KafkaStage(settings=settings, service="batch-test", topics=[TOPIC_SUBMITTED], handler=handler)
    await stage.start()
    try:
        outputs = await read_topic(kafka_bootstrap, settings.topic(TOPIC_CLASSIFIED), expect=6)
        letters = await read_topic(kafka_bootstrap, settings.topic(TOPIC_DEADLETTER), expect=1)

        async def all_committed() -> bool:
            return await _committed(kafka_bootstrap, "batch-test", settings.topic(TOPIC_SUBMITTED)) == 7

        await wait_for(all_committed, timeout=30, what="the offsets of all 7 messages committed")
    finally:
        await stage.stop()

    # Every good order once, in the partition's order; the bad one dead-lettered with its field.
    assert [o["order_id"] for o in outputs] == good
    assert (
        letters[0]["error_type"] == "SchemaValidationError" and "destination_country" in letters[0]["error"]
    )
    assert sum(handler.batches) >= 7
    assert [o["order_id"] for o in outputs if o.get("via") == "batch"] == handler.batched
    if fail_batches:
        # The failed poll went one message at a time (later polls, if any, as batches).
        alone = [o["order_id"] for o in outputs if "via" not in o]
        assert alone and alone == good[: len(alone)] and handler.calls == len(alone) + 1
    else:
        assert handler.batched == good
        # Only the message the batch left was handled alone.
        assert handler.calls == 1


class HeldProducer:
    """The real producer, with the broker's acknowledgement of chosen keys held back (until `gate`
    opens) or failed once: what a slow or failing broker looks like to the loop."""

    def __init__(self, real: AIOKafkaProducer, *, hold: str = "", fail_once: str = "") -> None:
        self.real = real
        self.hold, self.fail_once = hold.encode(), fail_once.encode()
        self.gate = asyncio.Event()
        self.failed = 0

    async def send(self, topic: str, *, value: bytes, key: bytes, headers: object) -> asyncio.Future[object]:
        acknowledged: asyncio.Future[object] = await self.real.send(
            topic, value=value, key=key, headers=headers
        )
        if key == self.fail_once and not self.failed:
            self.failed += 1
            refused: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            refused.set_exception(KafkaTimeoutError("the broker did not acknowledge in time"))
            return refused
        if key != self.hold:
            return acknowledged

        async def held() -> object:
            await self.gate.wait()
            return await acknowledged

        return asyncio.ensure_future(held())


@contextlib.asynccontextmanager
async def _running(
    kafka_bootstrap: str, prefix: str, handler: EchoHandler, *, overlap: bool = True, **held: str
) -> AsyncIterator[HeldProducer]:
    """A consumer loop reading the prefix's submitted topic through a `HeldProducer`; stopped (and
    its last poll landed) on leaving."""
    settings = load_settings(
        "pipelined-test",
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        consumer_overlap=overlap,
    )
    real = make_producer(settings)
    await real.start()
    producer = HeldProducer(real, **held)
    runner = ConsumerRunner(
        settings=settings,
        service="pipelined-test",
        topics=[settings.topic(TOPIC_SUBMITTED)],
        handler=handler,
        producer=producer,
        group_id=f"{prefix}pipelined",
    )
    task = asyncio.create_task(runner.run())
    try:
        yield producer
    finally:
        await runner.stop()
        await task
        await real.stop()


async def test_the_next_poll_is_handled_while_the_last_one_is_acknowledged_and_committed_after_it(
    kafka_bootstrap: str,
) -> None:
    """The loop overlaps handling with the broker's acknowledgement, but publishes the next poll's
    outputs only after the last poll landed, and commits nothing that is not acknowledged."""
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=1)
    submitted, classified = f"{prefix}{TOPIC_SUBMITTED}", f"{prefix}{TOPIC_CLASSIFIED}"
    handler = EchoHandler(classified)
    async with _running(kafka_bootstrap, prefix, handler, hold="SO-HELD") as producer:
        await publish(kafka_bootstrap, submitted, [("SO-HELD", json.dumps(order("SO-HELD")).encode())])
        await wait_for(lambda: handler.calls >= 1, timeout=30, what="the first order handled")
        await publish(kafka_bootstrap, submitted, [("SO-NEXT", json.dumps(order("SO-NEXT")).encode())])
        await wait_for(lambda: handler.calls >= 2, timeout=30, what="the next poll handled meanwhile")
        await asyncio.sleep(1.0)  # time for anything the loop would wrongly do before the ack

        # The held output is on the broker, but not acknowledged: nothing committed, and the next
        # order's output waits behind it.
        assert await _committed(kafka_bootstrap, f"{prefix}pipelined", submitted) == 0
        early = await read_topic(kafka_bootstrap, classified, expect=2, timeout=2.0)
        assert [o["order_id"] for o in early] == ["SO-HELD"]

        producer.gate.set()
        outputs = await read_topic(kafka_bootstrap, classified, expect=2)
        assert [o["order_id"] for o in outputs] == ["SO-HELD", "SO-NEXT"]

        async def both_committed() -> bool:
            return await _committed(kafka_bootstrap, f"{prefix}pipelined", submitted) == 2

        await wait_for(both_committed, timeout=30, what="both offsets committed once acknowledged")
    assert handler.calls == 2


async def test_without_the_overlap_the_next_poll_waits_for_the_last_ones_acknowledgement(
    kafka_bootstrap: str,
) -> None:
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=1)
    submitted, classified = f"{prefix}{TOPIC_SUBMITTED}", f"{prefix}{TOPIC_CLASSIFIED}"
    handler = EchoHandler(classified)
    async with _running(kafka_bootstrap, prefix, handler, overlap=False, hold="SO-HELD") as producer:
        await publish(kafka_bootstrap, submitted, [("SO-HELD", json.dumps(order("SO-HELD")).encode())])
        await wait_for(lambda: handler.calls >= 1, timeout=30, what="the first order handled")
        await publish(kafka_bootstrap, submitted, [("SO-NEXT", json.dumps(order("SO-NEXT")).encode())])
        await asyncio.sleep(2.0)  # long enough for several polls, were the loop reading on
        assert handler.calls == 1
        producer.gate.set()
        await wait_for(lambda: handler.calls >= 2, timeout=30, what="the next poll once acknowledged")
        outputs = await read_topic(kafka_bootstrap, classified, expect=2)
        assert [o["order_id"] for o in outputs] == ["SO-HELD", "SO-NEXT"]


async def test_an_unacknowledged_partition_is_read_again_and_the_others_are_committed(
    kafka_bootstrap: str,
) -> None:
    """One output refused by the broker: its partition is rewound to where that poll began, the
    messages behind it are not committed past it, and every output ends up on the topic with each
    partition's last copies in the input's order."""
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=3)
    ids = [f"SO-REWIND-{n}" for n in range(12)]
    submitted, classified = f"{prefix}{TOPIC_SUBMITTED}", f"{prefix}{TOPIC_CLASSIFIED}"
    await publish(kafka_bootstrap, submitted, [(i, json.dumps(order(i)).encode()) for i in ids])
    handler = EchoHandler(classified)

    async def all_committed() -> bool:
        return await _committed(kafka_bootstrap, f"{prefix}pipelined", submitted) == 12

    async with _running(kafka_bootstrap, prefix, handler, fail_once=ids[4]) as producer:
        await wait_for(all_committed, timeout=60, what="all 12 offsets committed")
    assert producer.failed == 1 and handler.calls > len(ids)

    inputs, outputs = (
        await _by_partition(kafka_bootstrap, submitted),
        await _by_partition(kafka_bootstrap, classified),
    )
    assert sorted({i for ids_ in outputs.values() for i in ids_}) == sorted(ids)
    for partition, sent in inputs.items():
        got = outputs[partition]
        last_copies = [i for n, i in enumerate(got) if i not in got[n + 1 :]]
        assert last_copies == sent, f"partition {partition}: {got}"


async def _by_partition(kafka_bootstrap: str, topic: str) -> dict[int, list[str]]:
    """Every order id on the three partitions of `topic`, per partition, in offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: dict[int, list[str]] = {tp.partition: [] for tp in tps}
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(timeout_ms=300)).items():
                found[tp.partition].extend(json.loads(r.value)["order_id"] for r in records)
        return found
    finally:
        await consumer.stop()


async def _committed(kafka_bootstrap: str, group: str, topic: str) -> int:
    """How many messages the group has committed on `topic` (0 while the broker's group coordinator
    is still starting on a fresh broker)."""
    try:
        return sum((await committed_offsets(kafka_bootstrap, group, topic)).values())
    except GroupCoordinatorNotAvailableError:
        return 0


async def test_a_batch_handler_gets_a_polls_messages_in_the_order_they_were_produced_across_topics(
    kafka_bootstrap: str,
) -> None:
    """records reads several topics; an order's steps from two of them (a review step, then the
    outcome) reach its poll in the order they were produced, each partition's own order kept."""
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=1)
    settings = load_settings("order-test", kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    # Produced submitted, classified, submitted, classified, ...: the topic sorted first alphabetically
    # (classified) holds the later of each pair.
    produced: list[tuple[str, str]] = []
    for n in range(4):
        for topic in (TOPIC_SUBMITTED, TOPIC_CLASSIFIED):
            order_id = f"SO-ORDER-{n}-{topic.split('.')[1]}"
            await publish(
                kafka_bootstrap, settings.topic(topic), [(order_id, json.dumps(order(order_id)).encode())]
            )
            produced.append((topic, order_id))
    handler = BatchEchoHandler(settings.topic(TOPIC_SCREENED), fail_batches=0)
    stage = KafkaStage(
        settings=settings, service="order-test", topics=[TOPIC_SUBMITTED, TOPIC_CLASSIFIED], handler=handler
    )
    await stage.start()
    try:
        await wait_for(lambda: len(handler.batched) >= 8, timeout=30, what="all 8 messages handled")
    finally:
        await stage.stop()
    assert handler.batches[0] == 8, handler.batches  # one poll held them all
    assert handler.batched == [order_id for _, order_id in produced]
