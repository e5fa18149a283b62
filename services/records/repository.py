"""Every query of the trail database. Functions take the session and never commit: the caller
(the handler for consumed events, the API dependency for HTTP requests) owns the transaction.

Several records instances may run at once, and an order's events arrive on different topics, so
different instances can hold them. Two rules keep that safe on SQLite and PostgreSQL alike:

- Insert-if-absent is `INSERT ... ON CONFLICT DO NOTHING` against a unique constraint, never
  "select, then insert" and never "insert, catch IntegrityError": on PostgreSQL an error aborts the
  whole transaction (recovering needs a SAVEPOINT, which the SQLite driver does not handle
  reliably), while ON CONFLICT never raises and reports through RETURNING whether a row was added.
- All writes for one order are serialised by locking its `orders` row first (SELECT ... FOR UPDATE
  on PostgreSQL; on SQLite the opening INSERT takes the database's single write lock). Under that
  lock the chain head is read, the step appended, and the current state recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from services.records.domain import (
    GENESIS_HASH,
    ChainLink,
    CurrentDecision,
    OrderState,
    OrderVersion,
    Review,
    apply_review,
    apply_version,
    chain_hash,
    distinct_codes,
    payload_digest,
    verify_chain,
)
from services.records.models import (
    Base,
    DecisionMatch,
    Order,
    ReferenceEvent,
    ReferenceKind,
    StoredDeadLetter,
    TrailStep,
)
from shared.events import (
    ClassifiedOrder,
    DeadLetter,
    DecidedOrder,
    Decision,
    ReviewedOrder,
    ReviewStep,
    ScreenedOrder,
    SubmittedOrder,
)

TrailEvent = SubmittedOrder | ClassifiedOrder | ScreenedOrder | DecidedOrder | ReviewedOrder | ReviewStep
DECISIONS = ("RELEASE", "LICENSE_REQUIRED", "HOLD", "BLOCK")


def stage_of(event: TrailEvent) -> str:
    if isinstance(event, SubmittedOrder):
        return "submitted"
    if isinstance(event, ClassifiedOrder):
        return "classified"
    if isinstance(event, ScreenedOrder):
        return "screened"
    if isinstance(event, DecidedOrder):
        return "decided"
    if isinstance(event, ReviewStep):
        return "review_step"
    return "reviewed"


def submitted_event_id_of(event: TrailEvent) -> str:
    """The order version a step belongs to; a submitted event is its own version."""
    return event.event_id if isinstance(event, SubmittedOrder) else event.submitted_event_id


def insert_if_absent(session: AsyncSession, model: type[Base], key: str | list[str]) -> Insert:
    """INSERT ... ON CONFLICT (key) DO NOTHING, in the session's dialect."""
    keys = [key] if isinstance(key, str) else key
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing(index_elements=keys)
    if dialect == "sqlite":
        return sqlite.insert(model).on_conflict_do_nothing(index_elements=keys)
    raise RuntimeError(f"unsupported database dialect {dialect!r}: use SQLite or PostgreSQL")


# --- writes (the handler) ------------------------------------------------------------------------


async def record_event(
    *,
    session: AsyncSession,
    topic: str,
    partition: int,
    offset: int,
    raw: bytes,
    payload: dict[str, Any],
    event: TrailEvent,
) -> bool:
    """Append `event` to its order's trail and update the order's current state.

    `raw` is the message as received, `payload` its decoded JSON (stored whole, unknown fields
    included), `event` its validated model. Returns False, changing nothing, when a step with this
    event_id is already recorded: redelivery and replays are harmless.
    """
    now = datetime.now(UTC)
    event_id = event.event_id
    order = await _lock_order(session, event.order_id, now)
    head = (
        await session.execute(
            select(TrailStep.seq, TrailStep.step_hash)
            .where(TrailStep.order_id == event.order_id)
            .order_by(TrailStep.seq.desc())
            .limit(1)
        )
    ).first()
    seq, prev_hash = (head.seq + 1, head.step_hash) if head is not None else (1, GENESIS_HASH)
    digest = payload_digest(raw)
    inserted = await session.execute(
        insert_if_absent(session, TrailStep, "event_id")
        .values(
            event_id=event_id,
            order_id=event.order_id,
            seq=seq,
            stage=stage_of(event),
            schema=event.schema_,
            topic=topic,
            partition=partition,
            offset=offset,
            submitted_event_id=submitted_event_id_of(event),
            payload=payload,
            payload_raw=raw,
            payload_sha256=digest,
            prev_hash=prev_hash,
            step_hash=chain_hash(prev_hash, digest, event_id),
            received_at=now,
        )
        .returning(TrailStep.id)
    )
    if inserted.scalar_one_or_none() is None:
        return False
    if isinstance(event, DecidedOrder):
        await record_matches(session, event)
    state = state_of(order)
    new_state = await _project(session, state, event)
    if new_state != state:
        _store(order, new_state, now)
    return True


async def record_matches(session: AsyncSession, decided: DecidedOrder) -> None:
    """Index the list entries a decision matched (not those a reviewer had cleared): the review queue
    filters by list from here, and an entry's orders are found without reading payloads."""
    rows = [
        {
            "order_id": decided.order_id,
            "decided_event_id": decided.event_id,
            "party_role": party.role,
            "party_name": party.name,
            "list_id": match.list_id,
            "entry_id": match.entry_id,
            "entry_version": match.entry_version,
            "score": match.score,
        }
        for party in decided.screening.parties
        for match in party.matches
    ]
    if rows:
        await session.execute(
            insert_if_absent(
                session,
                DecisionMatch,
                ["decided_event_id", "party_role", "party_name", "list_id", "entry_id"],
            ).values(rows)
        )


async def record_dead_letter(*, session: AsyncSession, letter: DeadLetter) -> bool:
    """Keep a dead letter once per event_id; False if it was already recorded."""
    inserted = await session.execute(
        insert_if_absent(session, StoredDeadLetter, "event_id")
        .values(
            event_id=letter.event_id,
            service=letter.service,
            source_topic=letter.source_topic,
            source_partition=letter.source_partition,
            source_offset=letter.source_offset,
            error_type=letter.error_type,
            error=letter.error,
            payload_b64=letter.payload_b64,
            key_b64=letter.key_b64,
            failed_at=letter.failed_at,
            received_at=datetime.now(UTC),
        )
        .returning(StoredDeadLetter.id)
    )
    return inserted.scalar_one_or_none() is not None


async def record_reference_event(
    *,
    session: AsyncSession,
    event_id: str,
    kind: ReferenceKind,
    topic: str,
    partition: int,
    offset: int,
    key: str | None,
    raw: bytes,
    payload: dict[str, Any] | None,
) -> bool:
    """Keep a list-update or clearance event once per event_id; False if already recorded."""
    inserted = await session.execute(
        insert_if_absent(session, ReferenceEvent, "event_id")
        .values(
            event_id=event_id,
            kind=kind,
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            payload=payload,
            payload_raw=raw,
            payload_sha256=payload_digest(raw),
            received_at=datetime.now(UTC),
        )
        .returning(ReferenceEvent.id)
    )
    return inserted.scalar_one_or_none() is not None


async def _lock_order(session: AsyncSession, order_id: str, now: datetime) -> Order:
    await session.execute(
        insert_if_absent(session, Order, "order_id").values(
            order_id=order_id, reason_codes=[], updated_at=now
        )
    )
    locked = await session.execute(
        select(Order)
        .where(Order.order_id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return locked.scalar_one()


async def _project(session: AsyncSession, state: OrderState, event: TrailEvent) -> OrderState:
    if isinstance(event, ReviewStep):
        return state  # the workflow's state is in review_requests; only the outcome changes the order
    if isinstance(event, ReviewedOrder):
        return apply_review(
            state,
            review=_review_of(event),
            submitted_event_id=event.submitted_event_id,
            decided_event_id=event.decided_event_id,
        )
    order = event if isinstance(event, SubmittedOrder) else event.order
    version = OrderVersion(order.occurred_at, order.event_id)
    if not isinstance(event, DecidedOrder):
        return apply_version(state, version=version, destination_country=order.destination_country)
    decision = CurrentDecision(
        decided_event_id=event.event_id,
        decision=event.decision.decision,
        risk_score=event.decision.risk_score,
        reason_codes=distinct_codes(reason.code for reason in event.decision.reasons),
    )
    return apply_version(
        state,
        version=version,
        destination_country=order.destination_country,
        decision=decision,
        review=await _latest_review(session, version.submitted_event_id, event.event_id),
    )


async def _latest_review(
    session: AsyncSession, submitted_event_id: str, decided_event_id: str
) -> Review | None:
    """The latest review already recorded for a decision (a replay may read it before the decision)."""
    payloads = await session.scalars(
        select(TrailStep.payload).where(
            TrailStep.submitted_event_id == submitted_event_id, TrailStep.stage == "reviewed"
        )
    )
    reviews = [ReviewedOrder.model_validate(payload) for payload in payloads]
    return max((_review_of(r) for r in reviews if r.decided_event_id == decided_event_id), default=None)


def _review_of(event: ReviewedOrder) -> Review:
    return Review(
        reviewed_at=event.reviewed_at,
        review_event_id=event.event_id,
        review_decision=event.review_decision,
        reviewer=event.reviewer,
        comment=event.comment,
    )


def state_of(order: Order) -> OrderState:
    """The order row as the domain's OrderState."""
    version = (
        OrderVersion(order.current_occurred_at, order.current_submitted_event_id)
        if order.current_submitted_event_id is not None and order.current_occurred_at is not None
        else None
    )
    decision = (
        CurrentDecision(order.decided_event_id, order.decision, order.risk_score, tuple(order.reason_codes))
        if order.decided_event_id is not None and order.decision is not None and order.risk_score is not None
        else None
    )
    review = (
        Review(
            order.reviewed_at,
            order.review_event_id,
            order.review_decision,
            order.reviewer,
            order.review_comment,
        )
        if order.reviewed_at is not None
        and order.review_event_id is not None
        and order.review_decision is not None
        and order.reviewer is not None
        and order.review_comment is not None
        else None
    )
    return OrderState(version, order.destination_country, decision, review)


def _store(order: Order, state: OrderState, now: datetime) -> None:
    order.current_submitted_event_id = state.version.submitted_event_id if state.version else None
    order.current_occurred_at = state.version.occurred_at if state.version else None
    order.destination_country = state.destination_country
    decision, review = state.decision, state.review
    order.decided_event_id = decision.decided_event_id if decision else None
    order.decision = decision.decision if decision else None
    order.risk_score = decision.risk_score if decision else None
    order.reason_codes = list(decision.reason_codes) if decision else []
    order.review_event_id = review.review_event_id if review else None
    order.review_decision = review.review_decision if review else None
    order.reviewer = review.reviewer if review else None
    order.review_comment = review.comment if review else None
    order.reviewed_at = review.reviewed_at if review else None
    order.updated_at = now


# --- reads (the API) -----------------------------------------------------------------------------


async def list_orders(
    *,
    session: AsyncSession,
    decision: str | None = None,
    reviewed: bool | None = None,
    limit: int,
    offset: int,
) -> list[Order]:
    """Orders with a recorded submission, most recently changed first."""
    query = select(Order).where(Order.current_submitted_event_id.is_not(None))
    if decision is not None:
        query = query.where(Order.decision == decision)
    if reviewed is not None:
        query = query.where(
            Order.review_event_id.is_not(None) if reviewed else Order.review_event_id.is_(None)
        )
    query = query.order_by(Order.updated_at.desc(), Order.order_id).limit(limit).offset(offset)
    return list(await session.scalars(query))


async def get_current_order(*, session: AsyncSession, order_id: str) -> Order | None:
    order = await session.get(Order, order_id)
    return order if order is not None and order.current_submitted_event_id is not None else None


@dataclass(frozen=True)
class OrderDetail:
    """An order's current state as the API shows it: the row, the submitted order and the current
    decision's full section."""

    row: Order
    order: dict[str, Any]
    decision: Decision | None
    review: Review | None

    @property
    def status(self) -> str:
        return (
            "reviewed" if self.review is not None else "decided" if self.decision is not None else "pending"
        )

    @property
    def order_id(self) -> str:
        return self.row.order_id

    @property
    def destination_country(self) -> str | None:
        return self.row.destination_country

    @property
    def submitted_event_id(self) -> str | None:
        return self.row.current_submitted_event_id

    @property
    def occurred_at(self) -> datetime | None:
        return self.row.current_occurred_at

    @property
    def decided_event_id(self) -> str | None:
        return self.row.decided_event_id

    @property
    def updated_at(self) -> datetime:
        return self.row.updated_at


async def get_order(*, session: AsyncSession, order_id: str) -> OrderDetail | None:
    """The current state with the submitted order and the current decision's full section."""
    order = await get_current_order(session=session, order_id=order_id)
    if order is None:
        return None
    steps = list(
        await session.scalars(
            select(TrailStep)
            .where(
                TrailStep.order_id == order_id,
                TrailStep.submitted_event_id == order.current_submitted_event_id,
            )
            .order_by(TrailStep.seq)
        )
    )
    submitted = next((s.payload for s in steps if s.stage == "submitted"), None)
    if submitted is None:
        # The submission itself not yet read (topics are consumed independently): every envelope
        # carries the order unchanged.
        submitted = next(s.payload["order"] for s in steps if s.stage not in ("reviewed", "review_step"))
    decided = next((s for s in steps if s.event_id == order.decided_event_id), None)
    decision = Decision.model_validate(decided.payload["decision"]) if decided is not None else None
    review = state_of(order).review
    return OrderDetail(row=order, order=submitted, decision=decision, review=review)


@dataclass(frozen=True)
class Trail:
    order_id: str
    steps: list[TrailStep]
    problems: list[str]

    @property
    def chain_valid(self) -> bool:
        return not self.problems

    @property
    def chain_problems(self) -> list[str]:
        return self.problems


async def get_trail(*, session: AsyncSession, order_id: str) -> Trail | None:
    """Every step of the order in chain order, and whether the hash chain verifies."""
    steps = list(
        await session.scalars(select(TrailStep).where(TrailStep.order_id == order_id).order_by(TrailStep.seq))
    )
    if not steps:
        return None
    links = [
        ChainLink(s.seq, s.event_id, s.payload_raw, s.payload, s.payload_sha256, s.prev_hash, s.step_hash)
        for s in steps
    ]
    return Trail(order_id=order_id, steps=steps, problems=verify_chain(links))


async def list_reference_events(
    *, session: AsyncSession, kind: ReferenceKind | None, limit: int, offset: int
) -> list[ReferenceEvent]:
    query = select(ReferenceEvent).order_by(ReferenceEvent.received_at.desc(), ReferenceEvent.id.desc())
    if kind is not None:
        query = query.where(ReferenceEvent.kind == kind)
    return list(await session.scalars(query.limit(limit).offset(offset)))


async def get_dead_letter(*, session: AsyncSession, event_id: str) -> StoredDeadLetter | None:
    return await session.scalar(select(StoredDeadLetter).where(StoredDeadLetter.event_id == event_id))


async def list_dead_letters(*, session: AsyncSession, limit: int, offset: int) -> list[StoredDeadLetter]:
    query = (
        select(StoredDeadLetter)
        .order_by(StoredDeadLetter.received_at.desc(), StoredDeadLetter.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(await session.scalars(query))


@dataclass(frozen=True)
class Stats:
    orders: int
    pending: int
    decisions: dict[str, int]
    reviewed: int
    dead_letters: int


async def get_stats(*, session: AsyncSession) -> Stats:
    rows = await session.execute(
        select(Order.decision, func.count())
        .where(Order.current_submitted_event_id.is_not(None))
        .group_by(Order.decision)
    )
    by_decision: dict[str | None, int] = {decision: count for decision, count in rows}
    reviewed = await session.scalar(select(func.count()).where(Order.review_event_id.is_not(None)))
    dead_letters = await session.scalar(select(func.count()).select_from(StoredDeadLetter))
    return Stats(
        orders=sum(by_decision.values()),
        pending=by_decision.get(None, 0),
        decisions={code: by_decision.get(code, 0) for code in DECISIONS},
        reviewed=reviewed or 0,
        dead_letters=dead_letters or 0,
    )
