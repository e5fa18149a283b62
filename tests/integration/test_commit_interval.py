"""Offsets committed on an interval (EXPORTWATCH_KAFKA_COMMIT_INTERVAL_MS): a stage killed between
polls, its acknowledged outputs' offsets not yet committed, loses nothing, and what it redoes is
the same events again, which records' dedupe by event_id absorbs; a stage stopped in order commits
what it held back. The stage runs as a process of its own (tests/integration/echo_stage.py) so that
the kill is a real SIGKILL: no `finally`, no flush."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from shared.events import TOPIC_CLASSIFIED, TOPIC_SUBMITTED
from tests.integration.kafka_helpers import (
    committed_offsets,
    create_prefixed_topics,
    publish,
    read_topic,
    unique_prefix,
    wait_for,
)
from tests.integration.test_consumer_runner import order

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# Longer than any test here: nothing is committed on the interval while the stage runs.
HELD_MS = 600_000


@contextmanager
def stage_process(
    kafka_bootstrap: str, prefix: str, group: str, interval_ms: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "EXPORTWATCH_KAFKA_COMMIT_INTERVAL_MS": str(interval_ms)}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.echo_stage", "--bootstrap", kafka_bootstrap,
             "--prefix", prefix, "--group", group],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


async def _published_one_poll_at_a_time(
    kafka_bootstrap: str, topic: str, out_topic: str, orders: list[dict[str, object]]
) -> None:
    """Each order published once the previous one's output is on the broker: one poll each."""
    for n, body in enumerate(orders, start=1):
        await publish(kafka_bootstrap, topic, [(str(body["order_id"]), json.dumps(body).encode())])
        await wait_for(
            lambda n=n: _count(kafka_bootstrap, out_topic, n), timeout=60, what=f"output {n} published"
        )


async def _count(kafka_bootstrap: str, topic: str, expect: int) -> bool:
    return len(await read_topic(kafka_bootstrap, topic, expect=expect, timeout=1.0)) >= expect


async def _topics(kafka_bootstrap: str) -> tuple[str, str, str, str]:
    """A fresh prefix's topics (one partition: one poll per order), its submitted and classified
    topics, and the stage's group."""
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=1)
    return prefix, f"{prefix}{TOPIC_SUBMITTED}", f"{prefix}{TOPIC_CLASSIFIED}", f"{prefix}echo"


async def test_a_stage_killed_between_polls_redoes_its_uncommitted_polls_and_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix, submitted, classified, group = await _topics(kafka_bootstrap)
    orders = [order(f"SO-KILL-{n}") for n in range(6)]
    with stage_process(kafka_bootstrap, prefix, group, HELD_MS, tmp_path / "first.log") as first:
        await _published_one_poll_at_a_time(kafka_bootstrap, submitted, classified, orders)
        # Six polls acknowledged, their offsets held back by the interval: nothing committed.
        await asyncio.sleep(1.0)
        assert await committed_offsets(kafka_bootstrap, group, submitted) == {}
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    with stage_process(kafka_bootstrap, prefix, group, 0, tmp_path / "second.log") as second:

        async def all_committed() -> bool:
            return await committed_offsets(kafka_bootstrap, group, submitted) == {0: len(orders)}

        await wait_for(all_committed, timeout=90, what="the redone polls committed")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
    outputs = await read_topic(kafka_bootstrap, classified, expect=2 * len(orders) + 1, timeout=5.0)
    sent = {str(o["event_id"]) for o in orders}
    # None lost: every order's output is there; redone: each twice, the same event (same event_id),
    # so records, which keeps one trail step per event_id, records each once.
    assert Counter(str(o["event_id"]) for o in outputs) == Counter({event: 2 for event in sent})
    assert {(o["order_id"], o["event_id"]) for o in outputs} == {
        (o["order_id"], o["event_id"]) for o in orders
    }


async def test_a_stage_stopped_in_order_commits_the_offsets_it_held_back(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix, submitted, classified, group = await _topics(kafka_bootstrap)
    orders = [order(f"SO-STOP-{n}") for n in range(3)]
    with stage_process(kafka_bootstrap, prefix, group, HELD_MS, tmp_path / "stage.log") as stage:
        await _published_one_poll_at_a_time(kafka_bootstrap, submitted, classified, orders)
        assert await committed_offsets(kafka_bootstrap, group, submitted) == {}
        stage.send_signal(signal.SIGTERM)
        assert stage.wait(timeout=60) == 0
    assert await committed_offsets(kafka_bootstrap, group, submitted) == {0: len(orders)}
    assert len(await read_topic(kafka_bootstrap, classified, expect=len(orders) + 1, timeout=3.0)) == 3
