"""Every dead letter is made by `dead_letter_for`: it carries the message whole (or, when too large
for one request, its beginning, size and hash) and is counted; what decode_json and require_key refuse."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from shared.codec import decode_json, require_key
from shared.kafka import (
    MAX_REQUEST_BYTES,
    ConsumerRunner,
    Incoming,
    Outgoing,
    PoisonMessage,
    dead_letter_for,
    payload_was_truncated,
    record_size,
)
from shared.settings import Settings


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


def test_a_message_too_large_for_one_request_is_set_aside_with_its_beginning_hash_and_origin() -> None:
    payload = b'{"order_id": "SO-1", "x": "' + b"y" * 3_000_000 + b'"}'
    message = Incoming("orders.submitted.v1", 1, 7, b"SO-1", payload, 0)
    letter = dead_letter_for(
        message, service="classifier", error_type="SchemaValidationError", error="too long", topic="dl"
    )
    body = json.loads(letter.value)
    kept = base64.b64decode(body["payload_b64"])
    assert len(letter.value) < MAX_REQUEST_BYTES and 0 < len(kept) < len(payload)
    assert payload.startswith(kept) and body["payload_truncated"] is True
    assert (body["payload_size"], body["payload_sha256"]) == (
        len(payload),
        hashlib.sha256(payload).hexdigest(),
    )
    assert payload_was_truncated(body["error"])
    assert f"first {len(kept)} of {len(payload)} bytes" in body["error"]
    assert "orders.submitted.v1[1]@7" in body["error"] and body["payload_sha256"] in body["error"]
    assert record_size(letter) <= MAX_REQUEST_BYTES


def test_a_message_that_fits_is_carried_whole_with_its_size_and_hash() -> None:
    message = Incoming("orders.submitted.v1", 0, 3, b"SO-2", b"{}", 0)
    body = json.loads(dead_letter_for(message, service="c", error_type="E", error="e", topic="dl").value)
    assert (body["payload_truncated"], body["payload_size"]) == (False, 2)
    assert body["payload_sha256"] == hashlib.sha256(b"{}").hexdigest() and not payload_was_truncated(
        body["error"]
    )


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'{"lines": [{"quantity": NaN}]}', "lines.0.quantity: NaN is not a JSON number"),
        (b'{"a": 1, "erp": {"margin": -Infinity}}', "erp.margin: -Infinity is not a JSON number"),
        (b'{"a": [1, 2, Infinity]}', "a.2: Infinity is not a JSON number"),
        (b'{"price": 1e999}', "price: 1e999 is beyond a double's range"),
    ],
)
def test_nan_and_infinity_are_not_json_wherever_they_are(raw: bytes, error: str) -> None:
    with pytest.raises(PoisonMessage, match=re.escape(error)) as refused:
        decode_json(Incoming("t", 0, 0, None, raw, 0))
    assert refused.value.error_type == "InvalidJson"


def test_finite_numbers_are_read_as_before() -> None:
    raw = b'{"q": 1.5, "big": 1e300, "n": -0.0, "i": 12}'
    assert decode_json(Incoming("t", 0, 0, None, raw, 0)) == {"q": 1.5, "big": 1e300, "n": -0.0, "i": 12}


def test_the_key_of_an_orders_event_must_be_its_order_id() -> None:
    require_key(Incoming("t", 0, 0, b"SO-1", b"", 0), "SO-1")
    with pytest.raises(PoisonMessage, match='the Kafka key "SO-2" is not the order_id "SO-1"') as wrong:
        require_key(Incoming("t", 0, 0, b"SO-2", b"", 0), "SO-1")
    assert wrong.value.error_type == "KeyMismatch"
    with pytest.raises(PoisonMessage, match='the Kafka key is missing; it must be the order_id "SO-1"'):
        require_key(Incoming("t", 0, 0, None, b"", 0), "SO-1")


def test_an_output_over_the_producers_limit_dead_letters_its_input_instead_of_stalling() -> None:
    runner = ConsumerRunner(
        settings=Settings(),
        service="screening",
        topics=["t"],
        handler=cast(Any, None),
        producer=cast(Any, None),
    )
    message = Incoming("orders.classified.v1", 0, 9, b"SO-3", b'{"order_id": "SO-3"}', 0)
    fits = [Outgoing("orders.screened.v1", "SO-3", b"x" * 1000)]
    assert runner._publishable(message, fits) == fits
    [letter] = runner._publishable(
        message, [Outgoing("orders.screened.v1", "SO-3", b"x" * MAX_REQUEST_BYTES)]
    )
    body = json.loads(letter.value)
    assert (letter.topic, body["error_type"]) == ("orders.deadletter.v1", "OutputTooLarge")
    assert f"over the producer's limit of {MAX_REQUEST_BYTES} bytes" in body["error"]
    assert base64.b64decode(body["payload_b64"]) == message.value  # the input, set aside whole
