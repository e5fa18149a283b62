"""The records HTTP API: the review queue, each order's decision and trail, reviews, dead letters.

Routes are thin: queries fetch through the repository, 404, and answer rows as they are read
(schemas.py); commands call the use cases (reviews.py, service.py) with the caller's identity (the
API key's, never a body field) and map their errors to HTTP. A review command writes the workflow's
state and its events in one transaction (the outbox); the relay publishes them, and the trail
steps are written by the consumer when records reads them back, like every other step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query, Response, status

from services.records import queue, repository, review_store, reviews, search, service
from services.records.api_trail import trail_router
from services.records.deps import IsoMoment, RuntimeDep, SessionDep, aware, query_error
from services.records.domain import InvalidReview
from services.records.models import ReferenceKind
from services.records.queue import QueueFilter
from services.records.review_store import RequestView
from services.records.schemas import (
    ApproveBody,
    CommentBody,
    DeadLetterOut,
    NotAMatchBody,
    OrderOut,
    OrderSummary,
    QueueItemOut,
    QueueOut,
    ReferenceEventOut,
    ReviewBody,
    ReviewOutcomeOut,
    ReviewRequestOut,
    StatsOut,
    TrailOut,
)
from services.records.service import RecordsRuntime
from shared.auth import ApproverDep, ReviewerDep, require
from shared.events import DecisionCode, ReviewStep, ScreeningClearance
from shared.kafka import PublishError
from shared.service import PublishDep
from shared.topology import REPLAYABLE_TOPICS

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=500)]
# Bounded: an offset past what the database's integers hold (SQLite and PostgreSQL: 2**63 - 1) was a
# 500; ten million rows is beyond any page a reviewer or a dashboard asks for.
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Moment = Annotated[IsoMoment, Query(description="ISO 8601 with a time zone, e.g. 2026-12-01T00:00:00Z")]

router = APIRouter(tags=["records"])


@router.get(
    "/orders",
    summary="Orders with their current decision, most recently changed first, filtered; keyset pages "
    "(the next page's cursor is in the X-Next-Cursor header)",
)
async def list_orders(
    session: SessionDep,
    response: Response,
    decision: DecisionCode | None = None,
    reviewed: bool | None = None,
    review: search.ReviewState | None = None,
    reason: Annotated[str | None, Query(pattern="^[A-Z][A-Z0-9_]{1,63}$")] = None,
    party: Annotated[
        str | None,
        Query(min_length=2, max_length=200, description="part of a party's name (any case, accents, script)"),
    ] = None,
    party_country: Annotated[str | None, Query(pattern="^[A-Z]{2}$")] = None,
    destination: Annotated[str | None, Query(pattern="^[A-Z]{2}$")] = None,
    list_id: Annotated[str | None, Query(alias="list", min_length=1, max_length=32)] = None,
    entry_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    created_from: Moment = None,
    created_to: Moment = None,
    decided_from: Moment = None,
    decided_to: Moment = None,
    shipped: bool | None = None,
    legal_hold: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
    cursor: Annotated[str | None, Query(min_length=1, max_length=400)] = None,
) -> list[OrderSummary]:
    if cursor is not None and offset:
        raise query_error("offset", str(offset), "give either a cursor or an offset, not both")
    wanted = search.OrderFilter(
        decision=decision,
        reviewed=reviewed,
        review=review,
        reason=reason,
        party=party,
        party_country=party_country,
        destination=destination,
        list_id=list_id,
        entry_id=entry_id,
        created_from=aware("created_from", created_from),
        created_to=aware("created_to", created_to),
        decided_from=aware("decided_from", decided_from),
        decided_to=aware("decided_to", decided_to),
        shipped=shipped,
        legal_hold=legal_hold,
    )
    try:
        page = await search.search_orders(session, wanted, limit=limit, cursor=cursor, offset=offset)
    except search.BadCursor as exc:
        raise query_error("cursor", cursor or "", str(exc)) from exc
    if page.next_cursor is not None:
        response.headers["X-Next-Cursor"] = page.next_cursor
    return [OrderSummary.model_validate(order) for order in page.orders]


@router.get(
    "/orders/{order_id}",
    summary="Current decision with reasons, the submitted order, review status and review requests",
)
async def get_order(order_id: str, session: SessionDep) -> OrderOut:
    detail = await repository.get_order(session=session, order_id=order_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_id!r} not found")
    requests = await review_store.requests_of(session, order_id, detail.submitted_event_id)
    out = OrderOut.model_validate(detail)
    out.review_requests = [ReviewRequestOut.of(view) for view in requests]
    return out


@router.get(
    "/orders/{order_id}/trail", summary="Every recorded step of the order and whether its hash chain verifies"
)
async def get_trail(order_id: str, session: SessionDep) -> TrailOut:
    trail = await repository.get_trail(session=session, order_id=order_id)
    if trail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_id!r} has no recorded trail")
    return TrailOut.model_validate(trail)


async def _review(runtime: RecordsRuntime, command: Callable[..., Awaitable[T]], **arguments: Any) -> T:
    """A review command (service.run_review), its refusals answered as HTTP errors (_refused)."""
    try:
        return await service.run_review(runtime, command, **arguments)
    except (reviews.ReviewRefused, InvalidReview) as exc:
        raise _refused(exc) from exc


def _refused(exc: reviews.ReviewRefused | InvalidReview) -> HTTPException:
    if isinstance(exc, InvalidReview):
        detail = [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error", "input": exc.value}]
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)
    return HTTPException(exc.status, str(exc))


def _outcome(outcome: reviews.ReviewOutcome) -> ReviewOutcomeOut:
    request = outcome.request
    done = len(outcome.approvals)
    state = (
        "rejected"
        if request.status == "rejected"
        else "approved"
        if outcome.reviewed is not None
        else "awaiting_approval"
    )
    return ReviewOutcomeOut(
        status=state,
        approvals=done,
        approvals_required=request.approvals_required,
        request=ReviewRequestOut.of(RequestView(request, outcome.approvals)),
        reviewed=outcome.reviewed,
    )


@router.post(
    "/orders/{order_id}/review",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Review the decision in effect: a raise takes effect at once, a lowering waits for two "
    "approver keys (the same decision again approves it); the outcome goes to orders.reviewed.v1",
    responses={
        403: {"description": "role too low"},
        409: {"description": "amended, pending or approved twice"},
    },
)
async def review_order(
    order_id: str, who: ReviewerDep, body: ReviewBody, runtime: RuntimeDep
) -> ReviewOutcomeOut:
    outcome = await _review(
        runtime,
        reviews.request_review,
        order_id=order_id,
        requested=body.review_decision,
        comment=body.comment,
        reason_codes=body.reason_codes,
        decided_event_id=body.decided_event_id,
        who=who,
    )
    return _outcome(outcome)


@router.post(
    "/orders/{order_id}/review/approve",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Approve the order's open review request (a second approver key makes a lowering final)",
)
async def approve_review(
    order_id: str, who: ApproverDep, runtime: RuntimeDep, body: ApproveBody | None = None
) -> ReviewOutcomeOut:
    body = body or ApproveBody()
    outcome = await _review(
        runtime,
        reviews.approve,
        order_id=order_id,
        comment=body.comment,
        decided_event_id=body.decided_event_id,
        who=who,
    )
    return _outcome(outcome)


@router.post(
    "/orders/{order_id}/review/reject",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Reject the order's open review request: the decision in effect stands",
)
async def reject_review(
    order_id: str, who: ApproverDep, body: CommentBody, runtime: RuntimeDep
) -> ReviewOutcomeOut:
    outcome = await _review(
        runtime,
        reviews.reject,
        order_id=order_id,
        comment=body.comment,
        who=who,
    )
    return _outcome(outcome)


@router.post(
    "/orders/{order_id}/review/request-information",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ask for information about the order (kept as a trail step)",
)
async def request_information(
    order_id: str, who: ReviewerDep, body: CommentBody, runtime: RuntimeDep
) -> ReviewStep:
    step = await _review(
        runtime,
        reviews.request_information,
        order_id=order_id,
        comment=body.comment,
        who=who,
    )
    return step


@router.post(
    "/orders/{order_id}/not-a-match",
    status_code=status.HTTP_202_ACCEPTED,
    summary="A party of the current decision is not the list entry it matched: published to "
    "screening.clearances.v1, so screening stops holding that pair until the entry changes",
)
async def not_a_match(
    order_id: str, who: ReviewerDep, body: NotAMatchBody, runtime: RuntimeDep
) -> ScreeningClearance:
    clearance = await _review(
        runtime,
        reviews.clear_match,
        order_id=order_id,
        party_name=body.party_name,
        list_id=body.list_id,
        entry_id=body.entry_id,
        reason=body.reason,
        who=who,
    )
    return clearance


@router.get("/queue", summary="HOLD and BLOCK orders waiting for a reviewer, oldest first, with counts")
async def review_queue(
    session: SessionDep,
    reason: Annotated[str | None, Query(max_length=64)] = None,
    destination: Annotated[str | None, Query(pattern="^[A-Z]{2}$")] = None,
    list_id: Annotated[str | None, Query(alias="list", max_length=32)] = None,
    min_age_hours: Annotated[float | None, Query(ge=0, le=24 * 365)] = None,
    decision: Literal["HOLD", "BLOCK"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> QueueOut:
    wanted = QueueFilter(
        reason=reason,
        destination=destination,
        list_id=list_id,
        min_age=timedelta(hours=min_age_hours) if min_age_hours is not None else None,
        decision=decision,
    )
    found = await queue.review_queue(session, wanted, now=datetime.now(UTC), limit=limit, offset=offset)
    return queue_out(found)


def queue_out(found: queue.Queue) -> QueueOut:
    return QueueOut(
        total=found.total,
        awaiting_approval=found.awaiting_approval,
        by_decision=found.by_decision,
        by_reason=found.by_reason,
        by_destination=found.by_destination,
        by_list=found.by_list,
        items=[
            QueueItemOut(
                order_id=item.order_id,
                decision=item.decision,
                risk_score=item.risk_score,
                destination_country=item.destination_country,
                reason_codes=item.reason_codes,
                lists=item.lists,
                decided_event_id=item.decided_event_id,
                decided_at=item.decided_at,
                age_seconds=round(item.age_seconds, 1),
                pending_review=ReviewRequestOut.of(item.pending) if item.pending else None,
            )
            for item in found.items
        ],
    )


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


@router.get(
    "/stats",
    summary="Orders per current decision, reviews and dead letters; of the orders decided in "
    "[from, to): per day, reason, destination and list, and decision latency percentiles",
)
async def get_stats(
    session: SessionDep,
    start: Annotated[IsoMoment, Query(alias="from")] = None,
    end: Annotated[IsoMoment, Query(alias="to")] = None,
) -> StatsOut:
    stats = await search.get_stats(session, start=aware("from", start), end=aware("to", end))
    return StatsOut.model_validate(stats)


@router.post(
    "/deadletters/{event_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Publish a dead letter's original bytes again to the topic it came from",
    dependencies=[require("admin")],
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


# The trail as system of record: audit, exports, dossiers, holds, alerts.
router.include_router(trail_router)
