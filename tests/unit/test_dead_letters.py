"""Every dead letter is made by `dead_letter_for`: it carries the message whole and is counted."""

from __future__ import annotations

import base64
import json

from prometheus_client import REGISTRY

from shared.kafka import Incoming, dead_letter_for


def _counted(service: str, topic: str, error_type: str) -> float:
    labels = {"service": service, "topic": topic, "error_type": error_type}
    return REGISTRY.get_sample_value("exportwatch_events_deadlettered_total", labels) or 0.0


def test_a_dead_letter_keeps_the_message_and_is_counted() -> None:
    message = Incoming("screening.clearances.v1", 2, 41, b"SDN:1:acme", b"{not json", 0)
    before = _counted("screening", message.topic, "InvalidJSON")
    letter = dead_letter_for(
        message, service="screening", error_type="InvalidJSON", error="not JSON", topic="orders.deadletter.v1"
    )
    assert _counted("screening", message.topic, "InvalidJSON") == before + 1
    body = json.loads(letter.value)
    assert (letter.topic, letter.key) == ("orders.deadletter.v1", "SDN:1:acme")
    assert (body["source_topic"], body["source_partition"], body["source_offset"]) == (message.topic, 2, 41)
    assert base64.b64decode(body["payload_b64"]) == b"{not json"
    assert (body["error_type"], body["error"]) == ("InvalidJSON", "not JSON")
