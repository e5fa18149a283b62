"""The fault suite: 2,000 orders with poison mixed in, through a pipeline that is hurt in turn.

One broker, one PostgreSQL and five service instances (records twice) run as processes for the
whole module (conftest.py); the scenarios below run against it in file order, each on a wave of
its own, and each checks every invariant of tests/faults/scenarios.py before the next begins.
The last checks go over all 2,000 orders again, so damage done late to early orders shows too.

`make test` runs it; alone: `python -m pytest tests/faults -q` (it starts its own servers).
Measured outcomes land in var/faults/last-run.md (the table of docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from shared.events import TOPIC_SUBMITTED
from tests.faults.harness import INSTANCES, FaultStack
from tests.faults.scenarios import (
    GROUP_INPUTS,
    Ledger,
    Outcome,
    answered_not_ready,
    check_dead_letters,
    check_orders,
    in_flight,
    records_api,
    run_scenario,
    wait_caught_up,
    wait_decided,
)
from tests.faults.traffic import SAMPLES, LagProbe, Wave, dead_letter_key, group_members, make_order, publish
from tests.unit.test_samples_pipeline import EXPECTED

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

BASELINE = 110
WAVE = 270  # 110 + 7 x 270 = 2,000 orders
# aiokafka's default session timeout is 10 s (no setting of the services changes it); a pause
# must outlast it for the group to give the paused member's partitions away.
SESSION_TIMEOUT_S = 10.0
HEARTBEAT_S = 3.0  # aiokafka's default heartbeat interval
# The pause ends a second after the coordinator is seen to have evicted the member (it is then
# past its session timeout by definition), at the latest after PAUSE_MAX_S.
PAUSE_AFTER_EVICTION_S = 1.0
PAUSE_MAX_S = 30.0
POSTGRES_DOWN_S = 20.0
# Of the PostgreSQL wave, published once the database is down (so some reach risk meanwhile).
POSTGRES_HELD_BACK = 20


def assert_clean(outcome: Outcome) -> None:
    assert outcome.problems == [], "\n".join(outcome.problems)
    assert outcome.decided == outcome.orders
    assert outcome.wrong_decision == 0 and outcome.trail_problems == 0


def assert_others_never_refused(stack: FaultStack, hurt: set[str], since: float) -> None:
    """Instances the fault did not touch never said 503 (a probe that merely timed out on a busy
    2-core machine is not counted)."""
    refused = [name for name in INSTANCES if name not in hurt and answered_not_ready(stack, name, since)]
    assert refused == [], f"not hurt, yet answered 503: {refused}"


async def _mid_wave(stack: FaultStack, instance: str, least: int = 10, timeout: float = 30) -> int:
    """Returns, with the group's uncommitted input, once the group has committed part of the new
    wave and still has at least `least` messages of it to go: the instance is mid-wave."""
    async with LagProbe(stack.broker.bootstrap_servers, instance, GROUP_INPUTS[instance]) as probe:
        start, _ = await probe.offsets()
        deadline = time.monotonic() + timeout
        while True:
            committed, end = await probe.offsets()
            if (committed > start and end - committed >= least) or time.monotonic() > deadline:
                return end - committed
            await asyncio.sleep(0.01)


async def _restarted_and_ready(
    stack: FaultStack, instance: str, restarts: int, timeout: float = 240
) -> float:
    started = time.monotonic()
    service = stack.services[instance]
    while not (service.restarts >= restarts and service.running and not service.awaiting_ready):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{instance} not back: {service.status()}\n{stack.log_tails()}")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def test_baseline_wave_is_decided_without_a_fault(stack: FaultStack, ledger: Ledger) -> None:
    async def nothing(_: Wave) -> dict[str, Any]:
        return {"none": "(reference decisions)"}

    outcome = await run_scenario(stack, ledger, "no fault (baseline)", nothing, size=BASELINE, inject_at=0)
    assert_clean(outcome)
    api = records_api(stack)
    try:
        for order in ledger.waves[0].orders:
            decision = (await api.get(f"/orders/{order.order_id}"))["decision"]
            seen = (decision["decision"], tuple(sorted({r["code"] for r in decision["reasons"]})))
            # Copies of one sample must agree with each other: a decision is a function of the order.
            assert ledger.baseline.setdefault(order.template, seen) == seen, order.order_id
    finally:
        await api.close()
    # And they are the decisions the samples get with every list source: the suite's screening loads
    # only the one its traffic needs (tests/faults/traffic.py, SCREENING_SOURCES).
    expected = {
        template: (EXPECTED[sample["order_id"]][0], tuple(EXPECTED[sample["order_id"]][1]))
        for template, sample in enumerate(SAMPLES)
    }
    differ = {
        SAMPLES[t]["order_id"]: (ledger.baseline.get(t), e)
        for t, e in expected.items()
        if ledger.baseline.get(t) != e
    }
    assert differ == {}, f"(got, expected with all six list sources): {differ}"


@pytest.mark.parametrize("instance", ["classifier", "screening", "risk", "records"])
async def test_kill_9_of_a_service_mid_wave_loses_and_duplicates_nothing(
    stack: FaultStack, ledger: Ledger, instance: str
) -> None:
    restarts = stack.services[instance].restarts

    async def kill(_: Wave) -> dict[str, Any]:
        # Kill it while it holds work: messages it has read and not committed yet.
        uncommitted = await _mid_wave(stack, instance)
        stack.kill(instance)
        back = await _restarted_and_ready(stack, instance, restarts + 1)
        return {"kill -9": instance, "uncommitted input": uncommitted, "ready again after": f"{back:.1f} s"}

    outcome = await run_scenario(
        stack, ledger, f"kill -9 {instance}", kill, size=WAVE, hurt=instance, inject_at=0
    )
    assert_clean(outcome)
    since = ledger.waves[-1].extra["fault_started"]
    assert stack.services[instance].restarts == restarts + 1
    assert stack.readiness.went_down_and_up(instance, since), stack.readiness.since(instance, since)[:5]
    # The rest of the pipeline never noticed; records-2 shares records' group and may wait out the
    # rebalance (its readiness then says so: docs/reliability.md).
    assert_others_never_refused(
        stack, {instance, "records-2"} if instance == "records" else {instance}, since
    )


async def test_kill_9_of_the_broker_and_a_restart_on_the_same_data(stack: FaultStack, ledger: Ledger) -> None:
    async def kill_broker(wave: Wave) -> dict[str, Any]:
        uncommitted = await in_flight(stack, *GROUP_INPUTS)
        killed = time.monotonic()
        away = stack.kill_broker_and_restart()  # blocks: the broker restarts on this thread
        wave.extra["broker_away"] = (killed, time.monotonic())
        return {
            "kill -9": "broker",
            "uncommitted input": uncommitted,
            "restarted on the same data after": f"{away:.1f} s",
        }

    outcome = await run_scenario(stack, ledger, "kill -9 broker", kill_broker, size=WAVE)
    assert_clean(outcome)
    since = ledger.waves[-1].extra["fault_started"]
    for instance in INSTANCES:
        assert stack.readiness.since(instance, since)[-1].ready, instance


async def test_postgresql_stopped_for_20_s_then_started(stack: FaultStack, ledger: Ledger) -> None:
    async def outage(wave: Wave) -> dict[str, Any]:
        uncommitted = await in_flight(stack, "records")
        stack.stop_postgres()
        stopped = time.monotonic()
        # Orders that reach risk while its licence ledger is away (the rest of the wave went by).
        await publish(stack.broker.bootstrap_servers, TOPIC_SUBMITTED, wave.extra["held_back"])
        answers: dict[int | str, int] = {}
        api = records_api(stack)
        try:
            while time.monotonic() - stopped < POSTGRES_DOWN_S:
                try:
                    status: int | str = (await api.client.get("/stats")).status_code
                except Exception as exc:
                    status = type(exc).__name__
                answers[status] = answers.get(status, 0) + 1
                await asyncio.sleep(2)
        finally:
            await api.close()
        stack.start_postgres()
        away = time.monotonic() - stopped
        wave.extra["api_answers"] = answers
        replayed = await _replay_handler_errors(stack, ledger, wave)
        return {
            "PostgreSQL stopped": f"{away:.0f} s",
            "uncommitted input (records)": uncommitted,
            "GET /stats meanwhile": ", ".join(f"{k} x{v}" for k, v in sorted(answers.items(), key=str)),
            "valid orders dead-lettered by risk, replayed": replayed,
        }

    outcome = await run_scenario(
        stack, ledger, "PostgreSQL stopped", outage, size=WAVE, inject_at=0.1, hold_back=POSTGRES_HELD_BACK
    )
    assert_clean(outcome)
    since = ledger.waves[-1].extra["fault_started"]
    # records cannot write a step while the database is away: its partitions wait (it retries
    # forever) and it stops polling, which its readiness reports; it comes back by itself. Risk
    # settles its licence ledger there too: it waits for it, without giving up (the test below).
    assert any(stack.readiness.went_down_and_up(r, since) for r in ("records", "records-2"))
    assert any(answered_not_ready(stack, r, since) for r in ("records", "records-2"))
    assert_others_never_refused(stack, {"records", "records-2", "risk"}, since)


async def _replay_handler_errors(stack: FaultStack, ledger: Ledger, wave: Wave) -> int:
    """What on-call does after an outage (docs/operations.md, Dead letters): once every group has
    caught up, replay the valid orders a service gave up on. Returns how many there were."""
    await wait_caught_up(stack, timeout=120)
    api = records_api(stack)
    try:
        mine = {o.order_id for o in wave.orders}
        gave_up = [
            letter
            for letter in await api.dead_letters()
            if letter["error_type"] == "HandlerError" and dead_letter_key(letter) in mine
        ]
        for letter in gave_up:
            response = await api.client.post(f"/deadletters/{letter['event_id']}/replay")
            assert response.status_code == 202, response.text
            ledger.replayed.add(str(dead_letter_key(letter)))
    finally:
        await api.close()
    wave.extra["replayed"] = len(gave_up)
    return len(gave_up)


async def test_no_valid_order_is_dead_lettered_while_postgresql_is_away(ledger: Ledger) -> None:
    """A database outage is transient (shared/failures.py): risk retries without limit, so no valid
    order became a HandlerError dead letter that on-call would have had to replay."""
    [wave] = [w for w in ledger.waves if "replayed" in w.extra]
    assert wave.extra["replayed"] == 0


async def test_every_instance_says_not_ready_while_the_broker_is_away(
    stack: FaultStack, ledger: Ledger
) -> None:
    [wave] = [w for w in ledger.waves if "broker_away" in w.extra]
    killed, back = wave.extra["broker_away"]
    silent = [
        name
        for name in INSTANCES
        if not any(not s.ready for s in stack.readiness.since(name, killed) if s.at <= back)
    ]
    assert silent == [], f"answered 200 on /readyz throughout the broker's absence: {silent}"


async def test_records_api_answers_503_while_postgresql_is_away(ledger: Ledger) -> None:
    [wave] = [w for w in ledger.waves if "api_answers" in w.extra]
    answers: dict[int | str, int] = wave.extra["api_answers"]
    assert answers and set(answers) == {503}, answers


async def test_a_records_instance_paused_past_its_session_timeout_rebalances(
    stack: FaultStack, ledger: Ledger
) -> None:
    bootstrap = stack.broker.bootstrap_servers
    assert await group_members(bootstrap, "records") == ("Stable", 2)

    async def pause(wave: Wave) -> dict[str, Any]:
        uncommitted = await in_flight(stack, "records")
        paused = time.monotonic()
        stack.pause("records-2")
        try:
            # The coordinator evicts the silent member after the session timeout and gives every
            # partition to the one left: the group is stable again with one member.
            evicted = None
            while time.monotonic() - paused < PAUSE_MAX_S:
                if evicted is None and await group_members(bootstrap, "records") == ("Stable", 1):
                    evicted = time.monotonic() - paused
                if evicted is not None and time.monotonic() - paused >= evicted + PAUSE_AFTER_EVICTION_S:
                    break
                await asyncio.sleep(0.25)
        finally:
            stack.resume("records-2")
        frozen = time.monotonic() - paused
        wave.extra["evicted_after"] = evicted
        return {
            "SIGSTOP": f"records-2 for {frozen:.0f} s (session timeout {SESSION_TIMEOUT_S:.0f} s)",
            "uncommitted input (records)": uncommitted,
            "left the group after": f"{evicted:.1f} s" if evicted is not None else "never",
        }

    outcome = await run_scenario(
        stack, ledger, "records-2 paused", pause, size=WAVE, hurt="records", inject_at=0.1
    )
    assert_clean(outcome)
    wave = ledger.waves[-1]
    since = wave.extra["fault_started"]
    # Not before the session timeout (counted from its last heartbeat, up to one interval earlier).
    evicted = wave.extra["evicted_after"]
    assert evicted is not None and evicted >= SESSION_TIMEOUT_S - HEARTBEAT_S - 0.5, evicted
    assert await group_members(bootstrap, "records") == ("Stable", 2)  # and it came back
    assert stack.readiness.went_down_and_up("records-2", since)
    assert_others_never_refused(stack, {"records", "records-2"}, since)


async def test_all_2000_orders_end_with_one_decision_and_a_valid_trail(
    stack: FaultStack, ledger: Ledger
) -> None:
    orders = ledger.orders
    assert len(orders) == BASELINE + 7 * WAVE == 2000
    api = records_api(stack)
    try:
        await wait_decided(api, orders, fraction=1.0, timeout=60, what="all orders")
        decisions = await api.decisions()
        result = await check_orders(api, orders, ledger.baseline, listed=decisions)
        letters = await check_dead_letters(api, ledger)
        # An order with fields the contract does not name is an order: decided, the fields kept.
        kept = []
        for wave in ledger.waves:
            [unknown] = [p for p in wave.poison if p.kind == "unknown fields"]
            trail = await api.get(f"/orders/{unknown.key}/trail")
            [step] = [s for s in trail["steps"] if s["stage"] == "submitted"]
            kept.append(
                step["payload"]["erp_batch"] == {"id": 4711, "lines": [1, 2]} and trail["chain_valid"]
            )
        stats = await api.get("/stats")
    finally:
        await api.close()
    ledger.poison = {kind: dict(outcome) for kind, outcome in letters["by_kind"].items()}
    for wave in ledger.waves:  # what the dead letters do not show: which poison was decided
        for poison in wave.poison:
            if decisions.get(_body_order_id(poison.value) or ""):
                ledger.poison[poison.kind]["decided"] = ledger.poison[poison.kind].get("decided", 0) + 1
    assert result["problems"] == [] and letters["problems"] == []
    assert result["decided"] == 2000
    assert kept == [True] * len(ledger.waves)
    assert stats["pending"] == 0, stats


def _body_order_id(value: bytes) -> str | None:
    try:
        order_id = json.loads(value).get("order_id")
    except (ValueError, AttributeError):
        return None
    return order_id if isinstance(order_id, str) else None


async def test_a_key_that_disagrees_with_the_body_is_dead_lettered(stack: FaultStack, ledger: Ledger) -> None:
    """The key keeps an order's events in order on one partition: an event under another key is a
    contract violation, dead-lettered by the classifier with both values named, and never decided."""
    api = records_api(stack)
    try:
        letters = await api.dead_letters()
        decisions = await api.decisions()
    finally:
        await api.close()
    by_key = {dead_letter_key(letter): letter for letter in letters}
    for wave in ledger.waves:
        [mismatched] = [p for p in wave.poison if p.kind == "key disagrees with the body"]
        body_order = json.loads(mismatched.value)["order_id"]
        letter = by_key.get(mismatched.key)
        assert letter is not None, f"no dead letter for key {mismatched.key}"
        assert (letter["service"], letter["error_type"]) == ("classifier", "KeyMismatch"), letter
        assert mismatched.key in letter["error"] and body_order in letter["error"], letter["error"]
        assert decisions.get(body_order) is None, f"{body_order} was decided: {decisions.get(body_order)}"


async def test_nan_in_an_unknown_field_is_refused_whole(stack: FaultStack, ledger: Ledger) -> None:
    """NaN is not JSON wherever it is (RFC 8259): the classifier dead-letters the message naming
    the field, nothing is decided, and records keeps no half of it."""
    api = records_api(stack)
    try:
        letters = {dead_letter_key(letter): letter for letter in await api.dead_letters()}
        for wave in ledger.waves:
            [poison] = [p for p in wave.poison if p.kind == "NaN in a field the contract does not name"]
            letter = letters[poison.key]
            assert (letter["service"], letter["error_type"]) == ("classifier", "InvalidJson"), letter
            assert letter["error"].startswith("erp_margin: NaN"), letter["error"]
            current = await api.client.get(f"/orders/{poison.key}")
            assert current.status_code == 404, current.text
    finally:
        await api.close()


TWO_MB = 2 * 1024 * 1024


def _two_mb_order(ledger: Ledger, key: str) -> bytes:
    body = json.loads(make_order(ledger.run, 99_999).value)
    body["order_id"] = key
    body["lines"][0]["description"] = "x" * TWO_MB  # past the contract's 4,000 characters
    return json.dumps(body).encode()


async def test_a_2_mb_message_is_refused_by_the_broker_at_its_default_limit(
    stack: FaultStack, ledger: Ledger
) -> None:
    # The producer's own limit raised, so that the broker (message.max.bytes, 1 MiB) is what refuses.
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.broker.bootstrap_servers, acks="all", max_request_size=4 * TWO_MB
    )
    await producer.start()
    try:
        with pytest.raises(KafkaError) as refused:
            await producer.send_and_wait(
                TOPIC_SUBMITTED, _two_mb_order(ledger, f"PSN-{ledger.run}-2mb-default")
            )
    finally:
        await producer.stop()
    assert "MessageSizeTooLarge" in type(refused.value).__name__ or "too large" in str(refused.value).lower()


async def test_a_2_mb_message_on_a_topic_that_accepts_it_is_dead_lettered_and_the_partition_moves_on(
    stack: FaultStack, ledger: Ledger
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.broker.bootstrap_servers)
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, TOPIC_SUBMITTED, {"max.message.bytes": str(4 * TWO_MB)}
                )
            ]
        )
    finally:
        await admin.close()
    key = f"PSN-{ledger.run}-2mb-allowed"
    after = make_order(ledger.run, 99_998)
    await publish(
        stack.broker.bootstrap_servers, TOPIC_SUBMITTED, [(key, _two_mb_order(ledger, key))],
        max_request_size=4 * TWO_MB,
    )  # fmt: skip
    # An order behind it on the same partition must still be decided.
    await _publish_to_partition_of(stack, key, after.order_id, after.value)
    api = records_api(stack)
    try:
        # Seconds, when the partition moves on (the rest of the suite decides 270 orders in ~20 s).
        await wait_decided(api, [after], fraction=1.0, timeout=20, what="the order behind the 2 MB message")
        letters = [letter for letter in await api.dead_letters() if dead_letter_key(letter) == key]
    finally:
        await api.close()
    assert len(letters) == 1 and letters[0]["error_type"] == "SchemaValidationError"
    # Its bytes would not fit in one request: the dead letter keeps their beginning and says so.
    assert "[payload truncated" in letters[0]["error"] and "SHA-256" in letters[0]["error"], letters[0][
        "error"
    ]


async def _publish_to_partition_of(stack: FaultStack, key: str, order_id: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers, acks="all")
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(TOPIC_SUBMITTED))
        partition = DefaultPartitioner()(key.encode(), partitions, partitions)  # where `key` went
        await producer.send_and_wait(TOPIC_SUBMITTED, value, key=order_id.encode(), partition=partition)
    finally:
        await producer.stop()
