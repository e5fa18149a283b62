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

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from services.records import audit
from services.records.audit import ChainEntry, StepFields
from services.records.chain import step_entry, step_fields
from services.records.domain import (
    GENESIS_HASH,
    ChainLink,
    CurrentDecision,
    OrderState,
    OrderVersion,
    Review,
    apply_review,
    apply_version,
    distinct_codes,
    payload_digest,
    search_text,
    verify_chain,
)
from services.records.models import (
    Base,
    DecisionMatch,
    Order,
    OrderAlertRow,
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
from shared.lifecycle_events import OrderAlert, ShippedOrder

TrailEvent = (
    SubmittedOrder
    | ClassifiedOrder
    | ScreenedOrder
    | DecidedOrder
    | ReviewedOrder
    | ReviewStep
    | ShippedOrder
    | OrderAlert
)
_STAGES: dict[type[TrailEvent], str] = {
    SubmittedOrder: "submitted",
    ClassifiedOrder: "classified",
    ScreenedOrder: "screened",
    DecidedOrder: "decided",
    ReviewStep: "review_step",
    ReviewedOrder: "reviewed",
    ShippedOrder: "shipped",
    OrderAlert: "alert",
}


def stage_of(event: TrailEvent) -> str:
    return _STAGES[type(event)]


def submitted_event_id_of(event: TrailEvent, order: Order | None = None) -> str:
    """The order version a step belongs to; a submitted event is its own version. A shipment that
    does not name the version shipped belongs to the current one (or, before any, to itself)."""
    if isinstance(event, SubmittedOrder):
        return event.event_id
    if isinstance(event, ShippedOrder):
        current = order.current_submitted_event_id if order is not None else None
        return event.submitted_event_id or current or event.event_id
    return event.submitted_event_id


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
    event: TrailEvent,
) -> ChainEntry | None:
    """Append `event` to its order's trail and update the order's current state.

    `raw` is the message as received (stored whole, unknown fields included), `event` its
    validated model. Returns the step's entry for the store-wide chain (the
    caller appends it, chain.append, once per transaction), or None, changing nothing, when a step
    with this event_id is already recorded: redelivery and replays are harmless.
    """
    now = datetime.now(UTC)
    order = await _lock_order(session, event.order_id, now)
    head = (
        await session.execute(
            select(TrailStep.seq, TrailStep.step_hash)
            .where(TrailStep.order_id == event.order_id)
            .order_by(TrailStep.seq.desc())
            .limit(1)
        )
    ).first()
    values, fields = new_step(
        event,
        order,
        head=(head.seq, head.step_hash) if head is not None else None,
        origin=(topic, partition, offset),
        raw=raw,
        now=now,
    )
    inserted = await session.execute(
        insert_if_absent(session, TrailStep, "event_id").values(**values).returning(TrailStep.id)
    )
    if inserted.scalar_one_or_none() is None:
        return None
    if isinstance(event, DecidedOrder):
        await record_matches(session, [event])
    if isinstance(event, OrderAlert):
        await record_alert(session, event, now)
    state = state_of(order)
    update_order(order, event, await _project(session, state, event), now)
    return step_entry(fields)


def new_step(
    event: TrailEvent,
    order: Order,
    *,
    head: tuple[int, str] | None,
    origin: tuple[str, int, int],
    raw: bytes,
    now: datetime,
) -> tuple[dict[str, Any], StepFields]:
    """The trail_steps row of `event` after its order's chain `head` (seq, step_hash; None for the
    first step), and its hashed fields."""
    seq, prev_hash = (head[0] + 1, head[1]) if head is not None else (1, GENESIS_HASH)
    topic, partition, offset = origin
    step: dict[str, Any] = {
        "event_id": event.event_id,
        "order_id": event.order_id,
        "seq": seq,
        "stage": stage_of(event),
        "schema": event.schema_,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "submitted_event_id": submitted_event_id_of(event, order),
        "received_at": now,
        "payload_sha256": payload_digest(raw),
    }
    fields = StepFields(
        **step,
        prev_hash=prev_hash,
        step_hash=audit.step_hash(prev_hash=prev_hash, **step),
        hash_version=2,
    )
    values = step | {
        # Kept once, as the bytes received (models.TrailStep.content parses them): a second copy as
        # JSON doubled what the database stores, compresses and logs per step.
        "payload": None,
        "payload_raw": raw,
        "prev_hash": fields.prev_hash,
        "step_hash": fields.step_hash,
        "hash_version": fields.hash_version,
    }
    return values, fields


def update_order(order: Order, event: TrailEvent, new_state: OrderState, now: datetime) -> None:
    """The order row after `event` moved its state to `new_state` (repository.project)."""
    state = state_of(order)
    if new_state != state:
        _store(order, new_state, now)
        _index(order, event, state, new_state, now)
    if isinstance(event, ShippedOrder):
        _ship(order, event, now)
    if order.created_at is None:
        order.created_at = now


def _index(order: Order, event: TrailEvent, before: OrderState, after: OrderState, now: datetime) -> None:
    """The search columns and moments of a state that changed: a new current version (its parties,
    when records first saw it), a new decision (its reasons, when it was recorded)."""
    if after.version != before.version and isinstance(
        event, SubmittedOrder | ClassifiedOrder | ScreenedOrder | DecidedOrder
    ):
        submitted = event if isinstance(event, SubmittedOrder) else event.order
        order.submitted_at = now
        order.party_search = "\n".join(dict.fromkeys(search_text(p.name) for p in submitted.parties))
        order.party_countries = "," + ",".join(sorted({p.country for p in submitted.parties})) + ","
    if after.decision != before.decision:
        decision = after.decision
        order.decided_at = now if decision is not None else None
        order.reason_search = "," + ",".join(decision.reason_codes) + "," if decision is not None else ""


def _ship(order: Order, event: ShippedOrder, now: datetime) -> None:
    """The latest shipment counts (an order may leave in parts): it ends the order's re-screening and
    starts its retention (15 CFR 762.6: five years from the later of decision and shipment)."""
    if order.shipped_at is None or event.shipped_at >= order.shipped_at:
        order.shipped_at = event.shipped_at
        order.shipped_event_id = event.event_id
        order.carrier_reference = event.carrier_reference
        order.updated_at = now


async def record_alert(session: AsyncSession, alert: OrderAlert, now: datetime) -> None:
    entries = [
        {
            "party_role": party.role,
            "party_name": party.name,
            "list_id": match.list_id,
            "entry_id": match.entry_id,
            "entry_name": match.entry_name,
            "entry_version": match.entry_version,
            "list_version": match.list_version,
            "score": match.score,
        }
        for party in alert.parties
        for match in party.matches
    ]
    await session.execute(
        insert_if_absent(session, OrderAlertRow, "event_id").values(
            event_id=alert.event_id,
            order_id=alert.order_id,
            kind=alert.kind,
            submitted_event_id=alert.submitted_event_id,
            decided_event_id=alert.decided_event_id,
            list_change_event_id=alert.list_change.event_id,
            list_id=alert.list_change.list_id,
            list_version=alert.list_change.new_version,
            entries=entries,
            shipped_at=alert.shipped_at,
            raised_at=now,
        )
    )


async def record_matches(session: AsyncSession, decisions: Iterable[DecidedOrder]) -> None:
    """Index the list entries decisions matched (not those a reviewer had cleared): the review queue
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
        for decided in decisions
        for party in decided.screening.parties
        for match in party.matches
    ]
    if rows:
        # Executemany (rows as parameters): a multi-row VALUES clause is a new statement to compile
        # for every count of rows.
        await session.execute(
            insert_if_absent(
                session,
                DecisionMatch,
                ["decided_event_id", "party_role", "party_name", "list_id", "entry_id"],
            ),
            rows,
        )


async def record_dead_letter(*, session: AsyncSession, letter: DeadLetter) -> ChainEntry | None:
    """Keep a dead letter once per event_id: its entry for the store-wide chain, or None if it was
    already recorded."""
    values: dict[str, Any] = {
        "event_id": letter.event_id,
        "service": letter.service,
        "source_topic": letter.source_topic,
        "source_partition": letter.source_partition,
        "source_offset": letter.source_offset,
        "error_type": letter.error_type,
        "error": letter.error,
        "payload_b64": letter.payload_b64,
        "key_b64": letter.key_b64,
        "failed_at": letter.failed_at,
        "received_at": datetime.now(UTC),
    }
    inserted = await session.execute(
        insert_if_absent(session, StoredDeadLetter, "event_id")
        .values(**values)
        .returning(StoredDeadLetter.id)
    )
    if inserted.scalar_one_or_none() is None:
        return None
    return ChainEntry("dead_letter", letter.event_id, None, audit.dead_letter_record_hash(**values))


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
) -> ChainEntry | None:
    """Keep a list-update or clearance event once per event_id: its entry for the store-wide chain,
    or None if already recorded."""
    values: dict[str, Any] = {
        "event_id": event_id,
        "kind": kind,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "received_at": datetime.now(UTC),
        "payload_sha256": payload_digest(raw),
    }
    inserted = await session.execute(
        insert_if_absent(session, ReferenceEvent, "event_id")
        .values(**values, payload=payload, payload_raw=raw)
        .returning(ReferenceEvent.id)
    )
    if inserted.scalar_one_or_none() is None:
        return None
    return ChainEntry("reference_event", event_id, None, audit.reference_record_hash(**values))


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
    review = (
        await _latest_review(session, event.submitted_event_id, event.event_id)
        if isinstance(event, DecidedOrder)
        else None
    )
    return project(state, event, review)


def project(state: OrderState, event: TrailEvent, review: Review | None) -> OrderState:
    """The order's state after `event`; `review`: for a decision, the latest review already
    recorded for it (a replay may bring the review before the decision)."""
    if isinstance(event, ReviewStep | ShippedOrder | OrderAlert):
        # The review workflow's state is in review_requests (only the outcome changes the order); a
        # shipment and an alert change no decision.
        return state
    if isinstance(event, ReviewedOrder):
        return apply_review(
            state,
            review=review_of(event),
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
        review=review,
    )


async def _latest_review(
    session: AsyncSession, submitted_event_id: str, decided_event_id: str
) -> Review | None:
    """The latest review already recorded for a decision (a replay may read it before the decision)."""
    stored = await session.scalars(
        select(TrailStep.payload_raw).where(
            TrailStep.submitted_event_id == submitted_event_id, TrailStep.stage == "reviewed"
        )
    )
    reviews = [ReviewedOrder.model_validate_json(raw) for raw in stored]
    return latest_review(reviews, decided_event_id)


def latest_review(reviews: Iterable[ReviewedOrder], decided_event_id: str) -> Review | None:
    return max((review_of(r) for r in reviews if r.decided_event_id == decided_event_id), default=None)


def review_of(event: ReviewedOrder) -> Review:
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

    @property
    def shipped_at(self) -> datetime | None:
        return self.row.shipped_at

    @property
    def carrier_reference(self) -> str | None:
        return self.row.carrier_reference

    @property
    def legal_hold(self) -> bool:
        return self.row.legal_hold


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
    submitted = next((s.content for s in steps if s.stage == "submitted"), None)
    if submitted is None:
        # The submission itself not yet read (topics are consumed independently): every envelope
        # carries the order unchanged.
        submitted = next(
            s.content["order"] for s in steps if s.stage in ("classified", "screened", "decided")
        )
    decided = next((s for s in steps if s.event_id == order.decided_event_id), None)
    decision = Decision.model_validate(decided.content["decision"]) if decided is not None else None
    review = state_of(order).review
    return OrderDetail(row=order, order=submitted, decision=decision, review=review)


def chain_link(step: TrailStep) -> ChainLink:
    return ChainLink(
        step.seq,
        step.event_id,
        step.payload_raw,
        step.payload,
        step.payload_sha256,
        step.prev_hash,
        step.step_hash,
        fields=step_fields(step),
    )


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
    links = [chain_link(s) for s in steps]
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
