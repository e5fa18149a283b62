"""The clearance rule (clearing.py), the clearance follower that feeds it from Kafka, and the queue
of list-change announcements. Pure or in-process: no broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.screening.changes import ChangePublisher, ListChange
from services.screening.clearances import ClearanceFollower
from services.screening.clearing import ClearanceBook, ClearanceRefused, new_clearance
from shared.events import ScreeningClearance, envelope_dump
from shared.kafka import Incoming, Outgoing, PoisonMessage, PublishError
from shared.settings import Settings

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
VERSIONS = {("UN", "KPe.001"): "v2"}


def clearance_of(**given: Any) -> ScreeningClearance:
    values: dict[str, Any] = {
        "event_id": "c-1",
        "party_name": "Korea Mining Development Trading Corp.",
        "list_id": "UN",
        "entry_id": "KPe.001",
        "entry_version": None,
        "reviewer": "a.reviewer",
        "reason": "Different company",
        "cleared_at": NOW,
        "list_ids": {"UN"},
        "entry_versions": VERSIONS,
    }
    return new_clearance(**(values | given))


def test_a_clearance_is_tied_to_the_entry_version_in_use() -> None:
    clearance = clearance_of()
    assert (clearance.entry_version, clearance.normalised_name) == ("v2", "korea mining development trading")
    assert clearance_of(entry_version="v2").entry_version == "v2"


@pytest.mark.parametrize(
    ("given", "kind", "says"),
    [
        ({"list_id": "XYZ"}, "unknown", "list_id 'XYZ' is not loaded"),
        ({"entry_id": "KPe.999"}, "unknown", "entry_id 'KPe.999' is not on list 'UN'"),
        ({"entry_version": "v1"}, "changed", "the entry has changed since (now 'v2')"),
    ],
)
def test_a_clearance_of_an_unknown_or_changed_entry_is_refused(
    given: dict[str, Any], kind: str, says: str
) -> None:
    with pytest.raises(ClearanceRefused) as refused:
        clearance_of(**given)
    assert refused.value.kind == kind and says in str(refused.value)


async def test_the_follower_puts_clearances_and_revokes_on_a_tombstone() -> None:
    book = ClearanceBook()
    follower = ClearanceFollower(book)
    clearance = clearance_of()
    key = b"UN:KPe.001:korea mining development trading"
    value = envelope_dump(clearance)

    assert await follower(Incoming("screening.clearances.v1", 0, 0, key, value, 0)) == []
    assert book.in_force("UN", "KPe.001", "korea mining development trading", "v2") is not None
    assert await follower(Incoming("screening.clearances.v1", 0, 1, key, None, 0)) == []
    assert len(book) == 0


async def test_a_message_that_is_no_clearance_raises_for_the_loop_to_dead_letter() -> None:
    follower = ClearanceFollower(ClearanceBook())
    with pytest.raises(PoisonMessage):
        await follower(Incoming("screening.clearances.v1", 0, 0, b"k", b"{not json", 0))
    with pytest.raises(ValidationError, match="reviewer"):
        await follower(
            Incoming("screening.clearances.v1", 0, 1, b"k", json.dumps({"event_id": "x"}).encode(), 0)
        )


async def test_announcements_the_broker_refuses_wait_in_order_and_go_out_later() -> None:
    sent: list[Outgoing] = []
    broker_up = False

    async def publish(outgoing: Outgoing) -> None:
        if not broker_up:
            raise PublishError("Kafka is not connected")
        sent.append(outgoing)

    changes = ChangePublisher(Settings(topic_prefix="t."), publish)
    change = ListChange("un_sc", "UN", "UN list", "v1", "v2", "2026-02-27", 3, ("a",), (), ())
    await changes.announce(
        [change, ListChange("un_sc", "UN2", "other", None, "v2", None, 1, (), (), ())], NOW
    )
    assert sent == [] and len(changes.unpublished) == 2

    broker_up = True
    await changes.flush()
    assert [(o.topic, o.key) for o in sent] == [("t.lists.updated.v1", "UN"), ("t.lists.updated.v1", "UN2")]
    assert changes.unpublished == []
