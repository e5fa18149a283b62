"""shared.kafka.CommitPolicy: when acknowledged offsets are committed."""

from __future__ import annotations

import time

from aiokafka import TopicPartition

from shared.kafka import CommitPolicy

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


def test_without_an_interval_every_poll_is_committed_at_once() -> None:
    policy = CommitPolicy(0)
    policy.add({A: 3})
    assert policy.due() == {A: 3}
    assert policy.due() == {}  # nothing pending: nothing to commit (an empty poll)


def test_with_an_interval_offsets_wait_and_the_latest_of_each_partition_is_committed() -> None:
    policy = CommitPolicy(50)
    policy.add({A: 3})
    policy.add({A: 5, B: 1})
    assert policy.due() == {}
    time.sleep(0.06)
    assert policy.due() == {A: 5, B: 1}
    policy.add({B: 2})
    assert policy.due() == {}  # the interval counts from the last commit


def test_take_commits_everything_pending_at_once() -> None:
    policy = CommitPolicy(600_000)
    policy.add({A: 7})
    assert policy.due() == {}
    assert policy.take() == {A: 7}
    assert policy.pending == {}
