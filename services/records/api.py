"""The records HTTP API: the held-orders queue, each order's decision and trail, dead letters, reviews.

Routes are thin: queries fetch through the repository, 404, and answer rows as they are read
(schemas.py); the two commands, a review and a replay, call service.py and map its errors to
HTTP. A review is not written here: it is published to `orders.reviewed.v1` (where the ERP hears
of it too) and recorded when records consumes it, so the trail is written by the consumer alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from services.records import repository, service
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
from services.records.service import RecordsRuntime
from shared.events import TOPIC_REVIEWED, DecisionCode, ReviewedOrder
from shared.kafka import PublishError
from shared.service import PublishDep, runtime_dependency
from shared.topology import REPLAYABLE_TOPICS

RuntimeDep = Annotated[RecordsRuntime, Depends(runtime_dependency(RecordsRuntime))]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    # The one place a read request's transaction is opened and closed.
    async with runtime.sessionmaker() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]

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
    return [OrderSummary.model_validate(order) for order in orders]


@router.get("/orders/{order_id}", summary="Current decision with reasons, the submitted order, review status")
async def get_order(order_id: str, session: SessionDep) -> OrderOut:
    detail = await repository.get_order(session=session, order_id=order_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_id!r} not found")
    return OrderOut.model_validate(detail)


@router.get(
    "/orders/{order_id}/trail", summary="Every recorded step of the order and whether its hash chain verifies"
)
async def get_trail(order_id: str, session: SessionDep) -> TrailOut:
    trail = await repository.get_trail(session=session, order_id=order_id)
    if trail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_id!r} has no recorded trail")
    return TrailOut.model_validate(trail)


@router.post(
    "/orders/{order_id}/review",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReviewedOrder,
    summary="Review the current decision: published to orders.reviewed.v1, recorded when consumed",
)
async def review_order(
    order_id: str, review: ReviewRequest, runtime: RuntimeDep, publish: PublishDep
) -> ReviewedOrder:
    try:
        return await service.review_order(
            sessionmaker=runtime.sessionmaker,
            publish=publish,
            topic=runtime.settings.topic(TOPIC_REVIEWED),
            order_id=order_id,
            review_decision=review.review_decision,
            reviewer=review.reviewer,
            comment=review.comment,
            now=datetime.now(UTC),
        )
    except service.OrderNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except service.NothingToReview as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except PublishError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"{exc}; review not recorded") from exc


@router.get("/deadletters", summary="Messages a service could not process, newest first, with their bytes")
async def list_dead_letters(
    session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> list[DeadLetterOut]:
    letters = await repository.list_dead_letters(session=session, limit=limit, offset=offset)
    return [DeadLetterOut.model_validate(letter) for letter in letters]


@router.get(
    "/reference-events",
    summary="List version changes and screening clearances, newest first (the audit side of screening)",
)
async def list_reference_events(
    session: SessionDep, kind: ReferenceKind | None = None, limit: Limit = 50, offset: Offset = 0
) -> list[ReferenceEventOut]:
    events = await repository.list_reference_events(session=session, kind=kind, limit=limit, offset=offset)
    return [ReferenceEventOut.model_validate(event) for event in events]


@router.get("/stats", summary="Orders per current decision, reviews and dead letters")
async def get_stats(session: SessionDep) -> StatsOut:
    return StatsOut.model_validate(await repository.get_stats(session=session))


@router.post(
    "/deadletters/{event_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Publish a dead letter's original bytes again to the topic it came from",
)
async def replay_dead_letter(event_id: str, runtime: RuntimeDep, publish: PublishDep) -> dict[str, Any]:
    try:
        replayed = await service.replay_dead_letter(
            sessionmaker=runtime.sessionmaker,
            publish=publish,
            replayable_topics={runtime.settings.topic(t) for t in REPLAYABLE_TOPICS},
            event_id=event_id,
        )
    except service.DeadLetterNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except service.NotReplayable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except PublishError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"{exc}; nothing replayed") from exc
    return {
        "replayed": replayed.event_id,
        "topic": replayed.topic,
        "key": replayed.key,
        "bytes": replayed.size,
    }
