"""The wiring table agrees with the topics the contract declares."""

from __future__ import annotations

from shared.events import ALL_TOPICS
from shared.topology import ERP_TOPICS, NOT_RECORDED, WIRING, producers_of, readers_of


def test_every_topic_has_a_producer_and_a_reader() -> None:
    for topic in ALL_TOPICS:
        assert producers_of(topic) or topic in ERP_TOPICS, f"{topic} has no producer in shared.topology"
        assert readers_of(topic), f"{topic} has no reader in shared.topology"


def test_wiring_names_only_declared_topics() -> None:
    for wiring in WIRING.values():
        unknown = set(wiring.reads + wiring.produces) - set(ALL_TOPICS)
        assert not unknown, f"{wiring.service} names undeclared topics {sorted(unknown)}"


def test_records_reads_every_topic_but_the_rescreen_requests() -> None:
    assert set(WIRING["records"].reads) == set(ALL_TOPICS) - set(NOT_RECORDED)
