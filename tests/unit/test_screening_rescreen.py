"""Delta screening, screening's side (services/screening/rescreen.py), on the real lists: a request
whose order has a party on an added entry comes back as an amended screening (or, shipped, as an
alert); nothing new, nothing published; a match the lists no longer give is carried forward."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.screening import rescreen as delta_screening
from services.screening.handler import TopicRouter
from services.screening.rescreen import (
    DeltaCache,
    ListsNotUpdated,
    RescreenHandler,
    carry_forward,
    new_matches,
)
from services.screening.service import ScreeningRuntime, build_runtime, screen_parties
from shared.events import (
    TOPIC_ALERTS,
    TOPIC_RESCREEN,
    TOPIC_SCREENED,
    ClassifiedOrder,
    ListChangeRef,
    PartyMatch,
    PartyScreening,
    ScreenedOrder,
    derived_event_id,
)
from shared.kafka import Incoming, Outgoing, PoisonMessage
from shared.lifecycle_events import OrderAlert, RescreenRequest
from shared.settings import Settings
from tests.screening_support import loaded_lists
from tests.unit.test_screening_handler import classified_order

SETTINGS = Settings()
DENA = ("SDN", "15145")  # DENA TANKERS FZE, a party of the classified order below


async def _publish(outgoing: Outgoing) -> None:
    pass


@pytest.fixture(scope="module")
def runtime() -> ScreeningRuntime:
    built = build_runtime(SETTINGS, _publish, loaded_lists())
    built.clearances_caught_up.set()
    return built


def _change(
    *, added: tuple[str, ...] = (DENA[1],), source: str = "csl", old_version: str | None = "sha256:older"
) -> ListChangeRef:
    snapshot = loaded_lists()
    current = snapshot.source(source)
    assert current is not None
    return ListChangeRef(
        event_id=str(uuid.uuid4()),
        source=source,
        list_id=DENA[0],
        list_name="Specially Designated Nationals",
        old_version=old_version,
        new_version=current.info.version,
        published=current.info.published,
        added=list(added),
    )


def _previous(
    runtime: ScreeningRuntime, classified: ClassifiedOrder, *, without: tuple[str, str] | None
) -> list[PartyScreening]:
    """The decision's screening as if the entry `without` had not been on the lists then."""
    screening = screen_parties(
        snapshot=runtime.snapshot, book=runtime.clearances, parties=classified.order.parties
    )
    return [
        p.model_copy(update={"matches": [m for m in p.matches if (m.list_id, m.entry_id) != without]})
        for p in screening.parties
    ]


def _request(
    runtime: ScreeningRuntime,
    change: ListChangeRef,
    *,
    without: tuple[str, str] | None = DENA,
    shipped_at: datetime | None = None,
    order: dict[str, Any] | None = None,
) -> Incoming:
    classified = ClassifiedOrder.model_validate(order or classified_order())
    request = RescreenRequest(
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{change.event_id}:{classified.order_id}")),
        order_id=classified.order_id,
        decided_event_id="9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        list_change=change,
        shipped_at=shipped_at,
        previous=_previous(runtime, classified, without=without),
        classified=classified,
    )
    value = request.model_dump_json(by_alias=True).encode()
    return Incoming(TOPIC_RESCREEN, 0, 7, classified.order_id.encode(), value, 0)


async def test_a_party_on_an_added_entry_gets_an_amended_screening(runtime: ScreeningRuntime) -> None:
    change = _change()
    incoming = _request(runtime, change)
    [out] = await RescreenHandler(SETTINGS, runtime)(incoming)
    assert out.topic == TOPIC_SCREENED and out.key == "SO-2026-000123"
    amended = ScreenedOrder.model_validate_json(out.value)
    request = RescreenRequest.model_validate_json(incoming.value or b"")
    assert amended.event_id == derived_event_id(request.event_id, "screening")
    assert amended.causation_id == request.event_id
    assert amended.classification == request.classified.classification  # classification kept
    amendment = amended.screening.amendment
    assert amendment is not None and amendment.list_change == change
    assert amendment.amends_decided_event_id == request.decided_event_id
    assert {(m.party_name, m.list_id, m.entry_id) for m in amendment.new_matches} == {
        ("DENA TANKERS FZE", *DENA)
    }
    # The whole screening is redone: the other parties' matches are there too.
    consignee = next(p for p in amended.screening.parties if p.role == "ultimate_consignee")
    assert DENA in {(m.list_id, m.entry_id) for m in consignee.matches}
    assert consignee.normalised_name == "dena tankers"
    # Redelivered: the same event, byte for byte (records keeps it once).
    [again] = await RescreenHandler(SETTINGS, runtime)(incoming)
    assert again.value == out.value


async def test_a_shipped_order_gets_an_alert_instead(runtime: ScreeningRuntime) -> None:
    shipped_at = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    [out] = await RescreenHandler(SETTINGS, runtime)(_request(runtime, _change(), shipped_at=shipped_at))
    assert out.topic == TOPIC_ALERTS
    alert = OrderAlert.model_validate_json(out.value)
    assert (alert.kind, alert.shipped_at) == ("post_shipment_match", shipped_at)
    assert [(p.role, [(m.list_id, m.entry_id) for m in p.matches]) for p in alert.parties] == [
        ("ultimate_consignee", [DENA]),
        ("purchaser_agent", [DENA]),
    ]


async def test_nothing_is_published_when_the_decision_already_had_the_match(
    runtime: ScreeningRuntime,
) -> None:
    assert await RescreenHandler(SETTINGS, runtime)(_request(runtime, _change(), without=None)) == []


async def test_nothing_is_published_when_no_party_is_near_a_changed_entry(runtime: ScreeningRuntime) -> None:
    order = classified_order()
    order["order"]["parties"] = [{"role": "buyer", "name": "Muster Maschinenbau GmbH", "country": "DE"}]
    assert await RescreenHandler(SETTINGS, runtime)(_request(runtime, _change(), order=order)) == []


async def test_a_removed_entry_never_lowers_the_decision(runtime: ScreeningRuntime) -> None:
    """The decision had a match the lists no longer give: it is carried forward in the amendment."""
    classified = ClassifiedOrder.model_validate(classified_order())
    screening = screen_parties(
        snapshot=runtime.snapshot, book=runtime.clearances, parties=classified.order.parties
    )
    gone = PartyMatch.model_validate(
        {**screening.parties[1].matches[0].model_dump(), "entry_id": "GONE-1", "entry_version": "v-old"}
    )
    previous = [
        p.model_copy(update={"matches": [*p.matches, gone]}) if p.role == "buyer" else p
        for p in screening.parties
    ]
    rebuilt, carried = carry_forward(previous, screening)
    buyer = next(p for p in rebuilt.parties if p.role == "buyer")
    assert gone in buyer.matches
    assert [(m.party_role, m.entry_id) for m in carried] == [("buyer", "GONE-1")]
    # Nothing is new in the screening that was already there.
    assert new_matches(rebuilt.parties, screening, frozenset({DENA})) == []


async def test_an_instance_still_on_the_old_list_updates_it_and_the_request_is_retried(
    runtime: ScreeningRuntime,
) -> None:
    current = loaded_lists().source("csl")
    assert current is not None
    change = _change(old_version=current.info.version)
    asked: list[list[str] | None] = []

    class Updater:
        async def update_lists(self, kinds: list[str] | None = None) -> list[Any]:
            asked.append(kinds)
            return []

    stale = build_runtime(SETTINGS, _publish, loaded_lists())
    stale.clearances_caught_up.set()
    stale.updater = Updater()  # type: ignore[assignment]
    handler = RescreenHandler(SETTINGS, stale)
    with pytest.raises(ListsNotUpdated, match="still at"):
        await handler(_request(runtime, change))
    await asyncio.sleep(0)
    assert asked == [["csl"]]


async def test_the_delta_is_built_once_per_change_and_list_generation(runtime: ScreeningRuntime) -> None:
    cache = DeltaCache()
    change = _change()
    first = cache.get(runtime.snapshot, change)
    assert cache.get(runtime.snapshot, change) is first
    assert first.keys == frozenset({DENA}) and first.index is not None
    assert cache.get(runtime.snapshot, _change(added=("no-such-entry",))).index is None


async def test_a_bad_request_is_a_dead_letter_naming_the_field(runtime: ScreeningRuntime) -> None:
    router = TopicRouter({TOPIC_RESCREEN: RescreenHandler(SETTINGS, runtime)})
    incoming = _request(runtime, _change())
    broken = json.loads(incoming.value or b"")
    broken["classified"]["order_id"] = "SO-OTHER"
    with pytest.raises(Exception, match="order_id"):
        await router(Incoming(TOPIC_RESCREEN, 0, 8, None, json.dumps(broken).encode(), 0))
    with pytest.raises(PoisonMessage, match="does not consume"):
        await router(Incoming("orders.unknown.v1", 0, 9, None, b"{}", 0))


def test_the_candidate_score_is_below_the_review_threshold() -> None:
    assert delta_screening.CANDIDATE_SCORE < loaded_lists().policy.review_threshold
