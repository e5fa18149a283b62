"""Queries of the review workflow's tables (review_requests, review_approvals, decision_matches).
Functions take the session and never commit: the use case owns the transaction (reviews.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.records.models import Order, ReviewApproval, ReviewRequest
from services.records.repository import insert_if_absent
from shared.keystore import Identity


@dataclass(frozen=True)
class RequestView:
    """A review request with its approvals, as the API and the dashboard show it."""

    request: ReviewRequest
    approvals: list[ReviewApproval]


async def lock_current_order(session: AsyncSession, order_id: str) -> Order | None:
    """The order row, locked for this transaction (every write for one order is serialised on its
    row, repository.py); None if no submission of it was recorded. The no-op UPDATE comes first so
    SQLite takes its write lock before reading (a read-then-write transaction could not upgrade)."""
    await session.execute(update(Order).where(Order.order_id == order_id).values(order_id=Order.order_id))
    order = await session.scalar(
        select(Order)
        .where(Order.order_id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return order if order is not None and order.current_submitted_event_id is not None else None


async def pending_request(session: AsyncSession, order_id: str) -> ReviewRequest | None:
    """The order's open request, whichever decision it is about."""
    return await session.scalar(
        select(ReviewRequest)
        .where(ReviewRequest.order_id == order_id, ReviewRequest.status == "pending")
        .order_by(ReviewRequest.id.desc())
        .limit(1)
    )


async def latest_approved(session: AsyncSession, decided_event_id: str) -> ReviewRequest | None:
    """The decision's most recently approved request: its outcome is in effect."""
    return await session.scalar(
        select(ReviewRequest)
        .where(ReviewRequest.decided_event_id == decided_event_id, ReviewRequest.status == "approved")
        .order_by(ReviewRequest.closed_at.desc(), ReviewRequest.id.desc())
        .limit(1)
    )


async def approvals_of(session: AsyncSession, request_id: str) -> list[ReviewApproval]:
    return list(
        await session.scalars(
            select(ReviewApproval).where(ReviewApproval.request_id == request_id).order_by(ReviewApproval.id)
        )
    )


async def add_approval(
    session: AsyncSession, *, request_id: str, approver: Identity, comment: str | None, now: datetime
) -> bool:
    """Record an approval; False if this key already approved the request (the unique constraint
    decides, even between two instances at once)."""
    inserted = await session.execute(
        insert_if_absent(session, ReviewApproval, ["request_id", "approver_key_id"])
        .values(
            request_id=request_id,
            approver_key_id=approver.key_id,
            approver_name=approver.name,
            approver_role=approver.role,
            comment=comment,
            approved_at=now,
        )
        .returning(ReviewApproval.id)
    )
    return inserted.scalar_one_or_none() is not None


async def requests_of(
    session: AsyncSession, order_id: str, submitted_event_id: str | None
) -> list[RequestView]:
    """Every request on the order's version, oldest first, each with its approvals."""
    query = select(ReviewRequest).where(ReviewRequest.order_id == order_id)
    if submitted_event_id is not None:
        query = query.where(ReviewRequest.submitted_event_id == submitted_event_id)
    requests = list(await session.scalars(query.order_by(ReviewRequest.id)))
    return await _with_approvals(session, requests)


async def pending_for(session: AsyncSession, decided_event_ids: Sequence[str]) -> dict[str, RequestView]:
    """The open request of each decision that has one."""
    if not decided_event_ids:
        return {}
    requests = list(
        await session.scalars(
            select(ReviewRequest).where(
                ReviewRequest.decided_event_id.in_(decided_event_ids), ReviewRequest.status == "pending"
            )
        )
    )
    return {view.request.decided_event_id: view for view in await _with_approvals(session, requests)}


async def _with_approvals(session: AsyncSession, requests: list[ReviewRequest]) -> list[RequestView]:
    if not requests:
        return []
    approvals = list(
        await session.scalars(
            select(ReviewApproval)
            .where(ReviewApproval.request_id.in_([r.request_id for r in requests]))
            .order_by(ReviewApproval.id)
        )
    )
    return [RequestView(r, [a for a in approvals if a.request_id == r.request_id]) for r in requests]
