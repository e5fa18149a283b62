"""The records HTTP API: the held-orders queue, each order's decision and trail, dead letters, reviews.

Routes are thin: fetch through the repository, 404, map to a response. The one write, a review, is
not written here: it is published to `orders.reviewed.v1` (where the ERP hears of it too) and
recorded when records consumes it, so the trail is written by the consumer alone and a review
becomes a step like any other: deduplicated, hash-chained, replayable.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, cast

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records import repository
from services.records.models import ReferenceKind
from services.records.schemas import (
    DeadLetterOut,
    OrderOut,
    OrderSummary,
    ReferenceEventOut,
    ReviewRequest,
    StatsOut,
    TrailOut,
)
from shared.events import (
    TOPIC_CLASSIFIED,
    TOPIC_DECIDED,
    TOPIC_REVIEWED,
    TOPIC_SCREENED,
    TOPIC_SUBMITTED,
    DecisionCode,
    ReviewedOrder,
    envelope_dump,
)
from shared.kafka import Outgoing
from shared.service import KafkaStage
from shared.settings import Settings


@dataclass(frozen=True)
class RecordsRuntime:
    """What the routes need, built once by the app's lifespan."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    stage: KafkaStage | None


def get_runtime(request: Request) -> RecordsRuntime:
    runtime: RecordsRuntime = request.app.state.records
    return runtime


RuntimeDep = Annotated[RecordsRuntime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    # The one place an HTTP request's transaction is committed (or rolled back on an error).
    async with runtime.sessionmaker() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
Limit = Annotated[int, Query(ge=1, le=500)]
# Bounded: an offset past what the database's integers hold (SQLite and PostgreSQL: 2**63 - 1) was a
# 500; ten million rows is beyond any page a reviewer or a dashboard asks for.
Offset = Annotated[int, Query(ge=0, le=10_000_000)]

router = APIRouter(tags=["records"])


@router.get("/orders", summary="Orders with their current decision, most recently changed first")
async def list_orders(
    session: SessionDep,
    decision: DecisionCode | None = None,
    reviewed: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[OrderSummary]:
    orders = await repository.list_orders(
        session=session, decision=decision, reviewed=reviewed, limit=limit, offset=offset
    )
    return [OrderSummary.of(order) for order in orders]


@router.get("/orders/{order_id}", summary="Current decision with reasons, the submitted order, review status")
async def get_order(order_id: str, session: SessionDep) -> OrderOut:
    detail = await repository.get_order(session=session, order_id=order_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_id!r} not found")
    return OrderOut.of(detail)


@router.get(
    "/orders/{order_id}/trail", summary="Every recorded step of the order and whether its hash chain verifies"
)
async def get_trail(order_id: str, session: SessionDep) -> TrailOut:
    trail = await repository.get_trail(session=session, order_id=order_id)
    if trail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_id!r} has no recorded trail")
    return TrailOut.of(trail)


@router.post(
    "/orders/{order_id}/review",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReviewedOrder,
    summary="Review the current decision: published to orders.reviewed.v1, recorded when consumed",
)
async def review_order(
    order_id: str, review: ReviewRequest, session: SessionDep, runtime: RuntimeDep
) -> ReviewedOrder:
    order = await repository.get_current_order(session=session, order_id=order_id)
    if order is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_id!r} not found")
    if order.decision is None or order.decided_event_id is None or order.current_submitted_event_id is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"order {order_id!r} has no decision for its current version "
            f"(submitted event {order.current_submitted_event_id}) yet; nothing to review",
        )
    # A review is a new fact, not derived from an event, so it gets a fresh id and the reviewer's
    # time. If the order is amended meanwhile, the review still enters the trail but does not
    # apply to the new version (it names the decision it reviewed).
    reviewed = ReviewedOrder(
        event_id=str(uuid.uuid4()),
        order_id=order_id,
        decided_event_id=order.decided_event_id,
        submitted_event_id=order.current_submitted_event_id,
        original_decision=cast(DecisionCode, order.decision),  # stored from a validated DecidedOrder
        review_decision=review.review_decision,
        reviewer=review.reviewer,
        comment=review.comment,
        reviewed_at=datetime.now(UTC),
    )
    if runtime.stage is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "Kafka is not connected; review not recorded"
        )
    outgoing = Outgoing(
        topic=runtime.settings.topic(TOPIC_REVIEWED), key=order_id, value=envelope_dump(reviewed)
    )
    try:
        await runtime.stage.publish(outgoing)
    except (RuntimeError, KafkaError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"Kafka is not connected ({exc}); review not recorded"
        ) from exc
    return reviewed


@router.get("/deadletters", summary="Messages a service could not process, newest first, with their bytes")
async def list_dead_letters(
    session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> list[DeadLetterOut]:
    letters = await repository.list_dead_letters(session=session, limit=limit, offset=offset)
    return [DeadLetterOut.of(letter) for letter in letters]


@router.get(
    "/reference-events",
    summary="List version changes and screening clearances, newest first (the audit side of screening)",
)
async def list_reference_events(
    session: SessionDep, kind: ReferenceKind | None = None, limit: Limit = 50, offset: Offset = 0
) -> list[ReferenceEventOut]:
    events = await repository.list_reference_events(session=session, kind=kind, limit=limit, offset=offset)
    return [ReferenceEventOut.of(event) for event in events]


@router.get("/stats", summary="Orders per current decision, reviews and dead letters")
async def get_stats(session: SessionDep) -> StatsOut:
    return StatsOut.of(await repository.get_stats(session=session))


# Dead letters of these topics can be replayed: the pipeline's own inputs. A dead letter of the
# dead-letter topic itself, or of a review, is evidence to read, not something to re-run.
REPLAYABLE = (TOPIC_SUBMITTED, TOPIC_CLASSIFIED, TOPIC_SCREENED, TOPIC_DECIDED)


@router.post(
    "/deadletters/{event_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Publish a dead letter's original bytes again to the topic it came from",
)
async def replay_dead_letter(event_id: str, session: SessionDep, runtime: RuntimeDep) -> dict[str, object]:
    """For on-call, once the cause is fixed (a service bug, a database outage that outlasted the
    retries): the same bytes and key go back to the source topic and are processed as new. If they
    fail again, that is a new dead letter (a new origin offset), never a silent drop."""
    letter = await repository.get_dead_letter(session=session, event_id=event_id)
    if letter is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"dead letter {event_id!r} not found")
    replayable = {runtime.settings.topic(t) for t in REPLAYABLE}
    if letter.source_topic not in replayable:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"dead letter {event_id!r} came from {letter.source_topic!r}; only {sorted(replayable)} are replayed",
        )
    if runtime.stage is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "Kafka is not connected; nothing replayed")
    key = base64.b64decode(letter.key_b64).decode("utf-8", "replace") if letter.key_b64 else event_id
    outgoing = Outgoing(topic=letter.source_topic, key=key, value=base64.b64decode(letter.payload_b64))
    try:
        await runtime.stage.publish(outgoing)
    except (RuntimeError, KafkaError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"Kafka is not connected ({exc}); nothing replayed"
        ) from exc
    return {"replayed": event_id, "topic": letter.source_topic, "key": key, "bytes": len(outgoing.value)}
