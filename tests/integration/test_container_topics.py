"""The image's `create-topics` command (compose's one-shot set-up) against the real broker."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from deploy.container import entrypoint
from shared.events import ALL_TOPICS, TOPIC_CLEARANCES, TOPIC_DECIDED
from tests.integration.kafka_helpers import unique_prefix

pytestmark = pytest.mark.integration


async def test_create_topics_makes_every_topic_with_its_partitions_and_compaction(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = unique_prefix()
    monkeypatch.setenv("EXPORTWATCH_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("EXPORTWATCH_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("EXPORTWATCH_TOPIC_PARTITIONS", "2")
    await entrypoint.create_all_topics()
    await entrypoint.create_all_topics()  # again: the topics exist, nothing fails

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([f"{prefix}{t}" for t in ALL_TOPICS])
        assert {d["topic"]: len(d["partitions"]) for d in described} == {
            f"{prefix}{t}": 2 for t in ALL_TOPICS
        }
        [response] = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, f"{prefix}{TOPIC_CLEARANCES}"),
                ConfigResource(ConfigResourceType.TOPIC, f"{prefix}{TOPIC_DECIDED}"),
            ]
        )
        policies = {
            resource[3]: {entry[0]: entry[1] for entry in resource[4]}["cleanup.policy"]
            for resource in response.resources
        }
        assert policies == {f"{prefix}{TOPIC_CLEARANCES}": "compact", f"{prefix}{TOPIC_DECIDED}": "delete"}
    finally:
        await admin.close()
