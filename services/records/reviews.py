"""records' review use cases: request a review, approve, reject, ask for information, clear a match.

Part of the use-case layer (with service.py). Each command runs in ONE database transaction on the
order's locked row: it reads the decision in effect, checks the four-eyes rule (domain.py), writes
the workflow's state (review_requests, review_approvals) and the events announcing it to the outbox
(outbox.py), and commits. Nothing here talks to Kafka: the relay publishes afterwards, so no
transaction waits on the broker and no step is ever half done.

Every step goes to orders.review-steps.v1 (records keeps it as a trail step: who, when, why); only
the final outcome goes to orders.reviewed.v1, where the ERP acts on it. Who acted is always the API
key's identity, passed in by the route.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records import outbox, review_store
from services.records.domain import (
    InvalidReview,
    ReviewRule,
    counts_as_approval,
    review_reason_codes,
    review_rule,
)
from services.records.models import Order, ReviewApproval, ReviewRequest, TrailStep
from shared.events import (
    TOPIC_CLEARANCES,
    TOPIC_REVIEW_STEPS,
    TOPIC_REVIEWED,
    ClearedEntry,
    DecidedOrder,
    ReviewAction,
    ReviewActor,
    ReviewDecisionCode,
    ReviewedOrder,
    ReviewStep,
    ScreeningClearance,
    clearance_key,
    envelope_dump,
)
from shared.events import (
    ReviewApproval as ApprovalEvent,
)
from shared.kafka import Outgoing
from shared.keystore import Identity, at_least
from shared.settings import Settings

Sessions = async_sessionmaker[AsyncSession]

__all__ = ["InvalidReview", "ReviewOutcome", "ReviewRefused", "Topics"]


class ReviewRefused(Exception):
    """A review command that cannot be done now; `status` is the HTTP status that says why (404: no
    such order or match, 403: role too low for this step, 409: conflicts with the order's state)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ReviewOutcome:
    """Where a request stands after a command: `reviewed` is the final outcome when there is one."""

    request: ReviewRequest
    approvals: list[ReviewApproval]
    reviewed: ReviewedOrder | None


@dataclass(frozen=True)
class Topics:
    steps: str
    reviewed: str
    clearances: str

    @classmethod
    def of(cls, settings: Settings) -> Topics:
        return cls(
            settings.topic(TOPIC_REVIEW_STEPS),
            settings.topic(TOPIC_REVIEWED),
            settings.topic(TOPIC_CLEARANCES),
        )


@dataclass
class _Context:
    """What a command reads under the order's lock: the order, its decision in effect, the
    decision's reasons."""

    session: AsyncSession
    order: Order
    decided: DecidedOrder
    in_effect: str
    reasons: Sequence[tuple[str, str]]


def actor(identity: Identity) -> ReviewActor:
    return ReviewActor(key_id=identity.key_id, name=identity.name, role=identity.role)


# --- reading the order under its lock --------------------------------------------------------------


async def _context(session: AsyncSession, order_id: str, decided_event_id: str | None) -> _Context:
    order = await review_store.lock_current_order(session, order_id)
    if order is None:
        raise ReviewRefused(404, f"order {order_id!r} not found")
    if order.decided_event_id is None or order.decision is None:
        raise ReviewRefused(
            409,
            f"order {order_id!r} has no decision for its current version (submitted event "
            f"{order.current_submitted_event_id}) yet; nothing to review",
        )
    if decided_event_id is not None and decided_event_id != order.decided_event_id:
        raise ReviewRefused(409, _amended(order, decided_event_id))
    raw = await session.scalar(
        select(TrailStep.payload_raw).where(TrailStep.event_id == order.decided_event_id)
    )
    if raw is None:
        raise RuntimeError(f"order {order_id!r}: its decision {order.decided_event_id} is not in the trail")
    decided = DecidedOrder.model_validate_json(raw)
    # An approved request is in effect from its commit, before its outcome comes back from the topic.
    approved = await review_store.latest_approved(session, order.decided_event_id)
    in_effect = approved.requested_decision if approved else order.review_decision or order.decision
    reasons = [(r.code, r.severity) for r in decided.decision.reasons]
    return _Context(session, order, decided, in_effect, reasons)


def _amended(order: Order, reviewed: str) -> str:
    return (
        f"decision {reviewed!r} of order {order.order_id!r} has since been amended: the order's current "
        f"decision is {order.decision} (decided event {order.decided_event_id}, order version "
        f"{order.current_submitted_event_id}); review that one"
    )


# --- commands ---------------------------------------------------------------------------------------


async def request_review(
    *,
    sessionmaker: Sessions,
    topics: Topics,
    order_id: str,
    requested: ReviewDecisionCode,
    comment: str,
    reason_codes: Sequence[str] | None,
    decided_event_id: str | None,
    who: Identity,
    now: datetime,
) -> ReviewOutcome:
    """A reviewer's decision on the decision in effect. A raise takes effect at once; a lowering
    opens a request that two approver keys must approve (the requester's own counts if it is an
    approver). The same decision again while a request is open approves it."""
    async with sessionmaker() as session, session.begin():
        context = await _context(session, order_id, decided_event_id)
        rule = review_rule(in_effect=context.in_effect, requested=requested, reasons=context.reasons)
        codes = review_reason_codes(reason_codes, rule=rule, reasons=context.reasons)
        pending = await review_store.pending_request(session, order_id)
        if pending is not None and pending.decided_event_id == context.order.decided_event_id:
            if rule.lowers and pending.requested_decision == requested:
                return await _approve(context, pending, who, comment, topics, now)
            if rule.lowers:
                raise ReviewRefused(
                    409,
                    f"a request to {pending.requested_decision} by {pending.requested_by_name!r} is "
                    "waiting for approval; approve or reject it first",
                )
        if pending is not None:
            # A raise, or a request left open on a decision since amended: it no longer stands.
            _close(pending, "superseded", who, "superseded by a later review", now)
            await _step(context, pending, "superseded", who, now, topics, comment=pending.close_comment)
        request = _new_request(context, rule, codes, comment, who, now)
        session.add(request)
        await session.flush()
        approvals: list[ReviewApproval] = []
        if counts_as_approval(who.role, rule):
            await review_store.add_approval(
                session, request_id=request.request_id, approver=who, comment=None, now=now
            )
            approvals = await review_store.approvals_of(session, request.request_id)
        await _step(context, request, "requested", who, now, topics, approvals=approvals, comment=comment)
        return await _conclude_if_approved(context, request, approvals, who, topics, now)


async def approve(
    *,
    sessionmaker: Sessions,
    topics: Topics,
    order_id: str,
    comment: str | None,
    decided_event_id: str | None,
    who: Identity,
    now: datetime,
) -> ReviewOutcome:
    """An approver's approval of the order's open request; the last one needed makes it final."""
    async with sessionmaker() as session, session.begin():
        context = await _context(session, order_id, decided_event_id)
        pending = await _pending_on_current(context)
        return await _approve(context, pending, who, comment, topics, now)


async def reject(
    *,
    sessionmaker: Sessions,
    topics: Topics,
    order_id: str,
    comment: str,
    who: Identity,
    now: datetime,
) -> ReviewOutcome:
    """An approver ends the order's open request: the decision in effect stands."""
    async with sessionmaker() as session, session.begin():
        context = await _context(session, order_id, None)
        pending = await review_store.pending_request(session, order_id)
        if pending is None:
            raise ReviewRefused(409, f"order {order_id!r} has no review request waiting for approval")
        _close(pending, "rejected", who, comment, now)
        approvals = await review_store.approvals_of(session, pending.request_id)
        await _step(context, pending, "rejected", who, now, topics, approvals=approvals, comment=comment)
        return ReviewOutcome(pending, approvals, None)


async def request_information(
    *,
    sessionmaker: Sessions,
    topics: Topics,
    order_id: str,
    comment: str,
    who: Identity,
    now: datetime,
) -> ReviewStep:
    """A reviewer asks for information (an end-use statement, a licence number): a trail step on the
    order, on its open request if it has one."""
    async with sessionmaker() as session, session.begin():
        context = await _context(session, order_id, None)
        pending = await review_store.pending_request(session, order_id)
        approvals = await review_store.approvals_of(session, pending.request_id) if pending else []
        return await _step(
            context, pending, "information_requested", who, now, topics, approvals=approvals, comment=comment
        )


async def clear_match(
    *,
    sessionmaker: Sessions,
    topics: Topics,
    order_id: str,
    party_name: str,
    list_id: str,
    entry_id: str,
    reason: str,
    who: Identity,
    now: datetime,
) -> ScreeningClearance:
    """ "Not a match": the party of the current decision is not this list entry. Published to
    screening.clearances.v1 (screening sets the pair aside until the entry changes) and kept as a
    trail step of the order."""
    async with sessionmaker() as session, session.begin():
        context = await _context(session, order_id, None)
        found = next(
            (
                (party, match)
                for party in context.decided.screening.parties
                for match in party.matches
                if party.name == party_name and match.list_id == list_id and match.entry_id == entry_id
            ),
            None,
        )
        if found is None:
            raise ReviewRefused(
                404,
                f"the current decision of order {order_id!r} has no match of {party_name!r} on "
                f"{list_id} entry {entry_id!r}",
            )
        party, match = found
        if match.entry_version is None:
            raise ReviewRefused(409, f"the match on {list_id} entry {entry_id!r} carries no entry version")
        if party.normalised_name is None:
            # The clearance's key names the party as screening normalises it, and this decision
            # predates screening stating that name: clear the pair through screening itself.
            raise ReviewRefused(
                409,
                f"the decision's screening of {party.name!r} predates its normalised name; clear the match "
                "with screening's POST /clearances instead",
            )
        clearance = ScreeningClearance(
            event_id=str(uuid.uuid4()),
            party_name=party.name,
            normalised_name=party.normalised_name,
            list_id=list_id,
            entry_id=entry_id,
            entry_version=match.entry_version,
            reviewer=who.name,
            reason=reason,
            cleared_at=now,
        )
        key = clearance_key(list_id, entry_id, clearance.normalised_name)
        outbox.add(
            session,
            event_id=clearance.event_id,
            outgoing=Outgoing(topics.clearances, key, envelope_dump(clearance)),
            now=now,
        )
        cleared = ClearedEntry(
            clearance_event_id=clearance.event_id,
            party_role=party.role,
            party_name=party.name,
            list_id=list_id,
            entry_id=entry_id,
            entry_version=match.entry_version,
        )
        await _step(context, None, "match_cleared", who, now, topics, comment=reason, cleared=cleared)
        return clearance


# --- the steps ----------------------------------------------------------------------------------


async def _pending_on_current(context: _Context) -> ReviewRequest:
    pending = await review_store.pending_request(context.session, context.order.order_id)
    if pending is None:
        raise ReviewRefused(
            409, f"order {context.order.order_id!r} has no review request waiting for approval"
        )
    if pending.decided_event_id != context.order.decided_event_id:
        raise ReviewRefused(409, _amended(context.order, pending.decided_event_id))
    return pending


async def _approve(
    context: _Context,
    request: ReviewRequest,
    who: Identity,
    comment: str | None,
    topics: Topics,
    now: datetime,
) -> ReviewOutcome:
    if not at_least(who.role, "approver"):
        raise ReviewRefused(
            403,
            f"approving a request to {request.requested_decision} needs the approver role; key {who.name!r} has {who.role}",
        )
    approvals = await review_store.approvals_of(context.session, request.request_id)
    # A name is one person: a key rotated (revoked, then made again under the same name) is still
    # the same approver.
    if any(a.approver_name == who.name for a in approvals) or not await review_store.add_approval(
        context.session, request_id=request.request_id, approver=who, comment=comment, now=now
    ):
        raise ReviewRefused(
            409, f"key {who.name!r} has already approved this request; a second approver must approve it"
        )
    approvals = await review_store.approvals_of(context.session, request.request_id)
    await _step(context, request, "approved", who, now, topics, approvals=approvals, comment=comment)
    return await _conclude_if_approved(context, request, approvals, who, topics, now)


async def _conclude_if_approved(
    context: _Context,
    request: ReviewRequest,
    approvals: list[ReviewApproval],
    who: Identity,
    topics: Topics,
    now: datetime,
) -> ReviewOutcome:
    if len(approvals) < request.approvals_required:
        return ReviewOutcome(request, approvals, None)
    reviewed = ReviewedOrder(
        event_id=str(uuid.uuid4()),
        order_id=request.order_id,
        decided_event_id=request.decided_event_id,
        submitted_event_id=request.submitted_event_id,
        original_decision=context.decided.decision.decision,
        review_decision=request.requested_decision,
        reviewer=who.name,
        comment=request.comment,
        reviewed_at=now,
        review_request_id=request.request_id,
        reason_codes=list(request.reason_codes),
        requested_by=ReviewActor(
            key_id=request.requested_by_key_id,
            name=request.requested_by_name,
            role=request.requested_by_role,
        ),
        approvals=[_approval(a) for a in approvals],
        approvals_required=request.approvals_required,
    )
    _close(request, "approved", who, None, now)
    request.reviewed_event_id = reviewed.event_id
    outbox.add(
        context.session,
        event_id=reviewed.event_id,
        outgoing=Outgoing(topics.reviewed, request.order_id, envelope_dump(reviewed)),
        now=now,
    )
    return ReviewOutcome(request, approvals, reviewed)


def _new_request(
    context: _Context, rule: ReviewRule, codes: tuple[str, ...], comment: str, who: Identity, now: datetime
) -> ReviewRequest:
    order = context.order
    assert order.decided_event_id is not None and order.current_submitted_event_id is not None
    return ReviewRequest(
        request_id=str(uuid.uuid4()),
        order_id=order.order_id,
        submitted_event_id=order.current_submitted_event_id,
        decided_event_id=order.decided_event_id,
        original_decision=rule.in_effect,
        requested_decision=rule.requested,
        reason_codes=list(codes),
        comment=comment,
        approvals_required=rule.approvals_required,
        requested_by_key_id=who.key_id,
        requested_by_name=who.name,
        requested_by_role=who.role,
        requested_at=now,
        status="pending",
    )


def _close(request: ReviewRequest, status: str, who: Identity, comment: str | None, now: datetime) -> None:
    request.status = status
    request.closed_at = now
    request.closed_by_name = who.name
    request.close_comment = comment


def _approval(row: ReviewApproval) -> ApprovalEvent:
    return ApprovalEvent(
        approver=ReviewActor(key_id=row.approver_key_id, name=row.approver_name, role=row.approver_role),
        approved_at=row.approved_at,
        comment=row.comment,
    )


async def _step(
    context: _Context,
    request: ReviewRequest | None,
    action: ReviewAction,
    who: Identity,
    now: datetime,
    topics: Topics,
    *,
    approvals: Sequence[ReviewApproval] = (),
    comment: str | None = None,
    cleared: ClearedEntry | None = None,
) -> ReviewStep:
    order = context.order
    assert order.decided_event_id is not None and order.current_submitted_event_id is not None
    step = ReviewStep(
        event_id=str(uuid.uuid4()),
        order_id=order.order_id,
        submitted_event_id=request.submitted_event_id if request else order.current_submitted_event_id,
        decided_event_id=request.decided_event_id if request else order.decided_event_id,
        review_request_id=request.request_id if request else None,
        action=action,
        actor=actor(who),
        occurred_at=now,
        original_decision=context.decided.decision.decision,
        requested_decision=request.requested_decision if request else None,
        reason_codes=list(request.reason_codes) if request else [],
        comment=comment,
        approvals=[_approval(a) for a in approvals],
        approvals_required=request.approvals_required if request else None,
        cleared=cleared,
    )
    outbox.add(
        context.session,
        event_id=step.event_id,
        outgoing=Outgoing(topics.steps, order.order_id, envelope_dump(step)),
        now=now,
    )
    return step
