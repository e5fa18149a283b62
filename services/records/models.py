"""The trail database: every event of every order, kept for the five years of 15 CFR 762.6.

Portable across SQLite (the embedded default) and PostgreSQL (production): JSON payloads,
timestamps stored in UTC and read back timezone-aware, 64-bit Kafka offsets. The schema is migrated
to its newest revision at start-up (Alembic, `services/records/migrations/`, run by
shared/migrations.py); a change to a table here needs a new revision there.

Insert-if-absent is race-safe with several records instances: every natural key (`event_id`,
`order_id`) has a unique constraint and rows are inserted with `INSERT ... ON CONFLICT DO NOTHING`
(both dialects have it), see repository.py.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import UtcDateTime, table_metadata
from shared.migrations import Schema, migrate

STAGES = ("submitted", "classified", "screened", "decided", "reviewed", "review_step", "shipped", "alert")
ReferenceKind = Literal["list_updated", "clearance", "clearance_revoked"]
REFERENCE_KINDS: tuple[str, ...] = get_args(ReferenceKind)

# Ids are bounded so that they fit a btree index on PostgreSQL; the handler refuses longer ones.
ID_LENGTH = 128
KEY_ID_LENGTH = 64
REVIEW_STATUSES = ("pending", "approved", "rejected", "superseded")
# What the store-wide chain links (audit.py): every stored event, and every act on the store itself.
CHAIN_KINDS = (
    "trail_step",
    "reference_event",
    "dead_letter",
    "legal_hold",
    "hold_released",
    "alert_acknowledged",
    "purge",
)
RESCREEN_STATUSES = ("pending", "done")


class Base(DeclarativeBase):
    """The trail database's one declarative base."""

    metadata = table_metadata()


class TrailStep(Base):
    """One event of one order, exactly as received, linked into the order's hash chain."""

    __tablename__ = "trail_steps"
    __table_args__ = (
        # `seq` is the step's position in its order's chain: one step per position, so a chain can
        # never fork even if two instances append to the same order (the order row lock prevents
        # that; this is the backstop). Its index also serves every lookup by order_id.
        UniqueConstraint("order_id", "seq"),
        CheckConstraint(f"stage IN ({', '.join(repr(s) for s in STAGES)})", name="stage"),
        CheckConstraint("hash_version IN (1, 2)", name="hash_version"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    order_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    seq: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(16))
    schema: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    # The order version the step belongs to: the submitted event's own id, `order.event_id` inside
    # an envelope, `submitted_event_id` of a review.
    submitted_event_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    # The step's JSON is its bytes as received (15 CFR 762.4: keep the record in the form received),
    # stored once in `payload_raw` and read through `content`. `payload` is JSON null for steps
    # stored since the payload is kept once; steps stored before kept the parsed JSON here too, and
    # verification still checks it against their bytes (an edit of either is caught).
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=False)
    payload_raw: Mapped[bytes] = mapped_column(LargeBinary)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    step_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    # 1: step_hash covers the previous hash, the bytes and the event id (steps stored before the
    # store-wide chain); 2: also the stage, topic, partition, offset, time received and order
    # (audit.py `step_hash`). Both are verified; the store-wide chain covers every field of both.
    hash_version: Mapped[int] = mapped_column(Integer, server_default=text("1"))

    @property
    def content(self) -> dict[str, Any]:
        """The event as received: its bytes, parsed (those the hash chain covers)."""
        return step_content(self.payload_raw)


def step_content(raw: bytes) -> dict[str, Any]:
    """A trail step's JSON from its stored bytes (an event the handler validated: a JSON object)."""
    content: dict[str, Any] = json.loads(raw)
    return content


class Order(Base):
    """The current state of an order: a projection of its trail, rebuilt by replaying the topics.

    A row without `current_submitted_event_id` exists only as the lock target of an order whose
    only recorded step so far is a review (seen before the decision it reviews); it is not listed.
    """

    __tablename__ = "orders"

    order_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    current_submitted_event_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    current_occurred_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    destination_country: Mapped[str | None] = mapped_column(String(2))
    decision: Mapped[str | None] = mapped_column(String(16), index=True)
    risk_score: Mapped[int | None] = mapped_column(Integer)
    decided_event_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    reason_codes: Mapped[list[str]] = mapped_column(JSON)
    review_event_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    review_decision: Mapped[str | None] = mapped_column(String(16))
    reviewer: Mapped[str | None] = mapped_column(Text)
    review_comment: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    # When records first recorded a step of the order, and, for the current version, its submission
    # and its decision (GET /orders date filters, GET /stats decision latency).
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    # orders.shipped.v1: the ERP shipped the order (an order is open while decided and not shipped).
    shipped_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    shipped_event_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    carrier_reference: Mapped[str | None] = mapped_column(Text)
    # Search columns of the current version, the same text on SQLite and PostgreSQL: party names
    # folded (domain.search_text: transliterated, case-folded, one space) one per line, party
    # countries and reason codes between commas (",DE,RU,"), matched with LIKE.
    party_search: Mapped[str] = mapped_column(Text, server_default="")
    party_countries: Mapped[str] = mapped_column(Text, server_default="")
    reason_search: Mapped[str] = mapped_column(Text, server_default="")
    # A legal hold in force (legal_holds): never purged while set.
    legal_hold: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class StoredDeadLetter(Base):
    """An `orders.deadletter.v1` event: a message some service could not process, with its bytes."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    service: Mapped[str] = mapped_column(Text)
    source_topic: Mapped[str] = mapped_column(Text)
    source_partition: Mapped[int] = mapped_column(Integer)
    source_offset: Mapped[int] = mapped_column(BigInteger)
    error_type: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    payload_b64: Mapped[str] = mapped_column(Text)
    key_b64: Mapped[str | None] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class ReferenceEvent(Base):
    """An event about the reference data rather than an order: a list version change
    (`lists.updated.v1`) or a reviewer's clearance of a screening hit (`screening.clearances.v1`),
    kept for the audit trail in full, since the clearances topic itself is compacted."""

    __tablename__ = "reference_events"
    __table_args__ = (
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in REFERENCE_KINDS)})", name="kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(String(24), index=True)
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    payload_raw: Mapped[bytes] = mapped_column(LargeBinary)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class DecisionMatch(Base):
    """One list entry a decision matched (a party's match in its screening section), so the review
    queue can be filtered by list and an entry's orders found without reading the payloads."""

    __tablename__ = "decision_matches"
    __table_args__ = (
        UniqueConstraint("decided_event_id", "party_role", "party_name", "list_id", "entry_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    decided_event_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    party_role: Mapped[str] = mapped_column(String(32))
    party_name: Mapped[str] = mapped_column(Text)
    list_id: Mapped[str] = mapped_column(String(32), index=True)
    entry_id: Mapped[str] = mapped_column(String(200))
    entry_version: Mapped[str | None] = mapped_column(String(80))
    score: Mapped[float] = mapped_column(Float)


class ReviewRequest(Base):
    """A request to change one decision of one order version, and where its four-eyes review stands.

    Raising severity is approved by its requester alone (approvals_required 1); lowering it needs two
    approvals by two different approver keys (docs/architecture.md, "Reviews"). The workflow's state
    lives here; each step is also published to orders.review-steps.v1 (through the outbox) and kept
    in the trail.
    """

    __tablename__ = "review_requests"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in REVIEW_STATUSES)})", name="status"),
        # One open request per decision; a second waits until the first is approved or rejected.
        Index(
            "ix_review_requests_one_pending",
            "decided_event_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    order_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    submitted_event_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    decided_event_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    # The decision in effect when requested: the machine's, or an earlier review's.
    original_decision: Mapped[str] = mapped_column(String(16))
    requested_decision: Mapped[str] = mapped_column(String(16))
    reason_codes: Mapped[list[str]] = mapped_column(JSON)
    comment: Mapped[str] = mapped_column(Text)
    approvals_required: Mapped[int] = mapped_column(Integer)
    requested_by_key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    requested_by_name: Mapped[str] = mapped_column(Text)
    requested_by_role: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    closed_by_name: Mapped[str | None] = mapped_column(Text)
    close_comment: Mapped[str | None] = mapped_column(Text)
    # The orders.reviewed.v1 event of an approved request.
    reviewed_event_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))


class ReviewApproval(Base):
    """One approval of a review request; a key approves a request at most once (the database says
    so, whatever the application checks)."""

    __tablename__ = "review_approvals"
    __table_args__ = (UniqueConstraint("request_id", "approver_key_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("review_requests.request_id"))
    approver_key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    approver_name: Mapped[str] = mapped_column(Text)
    approver_role: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    approved_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OutboxMessage(Base):
    """An event to publish, written in the same transaction as the state it announces (the
    transactional outbox): a workflow step is never half done, and no transaction waits on Kafka.
    The relay (outbox.py) publishes unpublished rows in id order and marks them."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    topic: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(Text)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    # A relay that took the row owns it until then (several records instances share the outbox).
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class DashboardSession(Base):
    """A browser signed in to the dashboard: the cookie holds a random id, this row its SHA-256,
    the key it was signed in with (checked again on every request, so a revoked key signs out) and
    the session's CSRF token."""

    __tablename__ = "dashboard_sessions"

    session_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class ChainLinkRow(Base):
    """One position of the store-wide chain: every stored event (trail steps, reference events,
    dead letters) and every act on the store (legal holds, acknowledgements, purges), in the order
    they were committed. `record_hash` is the hash of the record's content (audit.py), `chain_hash`
    links it to the position before; the head is anchored outside the database (anchors.py)."""

    __tablename__ = "audit_chain"
    __table_args__ = (
        UniqueConstraint("kind", "record_id"),
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in CHAIN_KINDS)})", name="kind"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(24))
    record_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    order_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    record_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    chain_hash: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class ChainHead(Base):
    """The chain's head: one row (id 1), locked by every transaction that appends (audit.py), so
    the chain has one order whatever the number of records instances. `chain_id` names this chain
    (made once, with the table): anchors carry it, so an anchor of another database is told apart."""

    __tablename__ = "chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    chain_id: Mapped[str] = mapped_column(String(36))
    seq: Mapped[int] = mapped_column(BigInteger)
    chain_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LegalHold(Base):
    """A legal hold on an order (an admin's, with why): the order is not purged while one is in
    force, whatever its age. Released, the row stays with who released it and why."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    hold_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    order_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    reason: Mapped[str] = mapped_column(Text)
    placed_by_name: Mapped[str] = mapped_column(Text)
    placed_by_key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    placed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    released_by_name: Mapped[str | None] = mapped_column(Text)
    released_by_key_id: Mapped[str | None] = mapped_column(String(KEY_ID_LENGTH))
    release_reason: Mapped[str | None] = mapped_column(Text)


class PurgedOrder(Base):
    """The tombstone of an order whose records were deleted at the end of their retention (15 CFR
    762.6): what was there (how many steps, the per-order chain's last hash, when), why it could go,
    and the purge that took it. The store-wide chain keeps the deleted records' hashes, so it still
    verifies; this row says why their records are gone."""

    __tablename__ = "purged_orders"
    __table_args__ = (UniqueConstraint("order_id", "purge_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # An order id the ERP used again after a purge is purged again later: one tombstone per purge.
    order_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    purge_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    purged_at: Mapped[datetime] = mapped_column(UtcDateTime())
    purged_by: Mapped[str] = mapped_column(Text)
    steps: Mapped[int] = mapped_column(Integer)
    last_step_hash: Mapped[str] = mapped_column(String(64))
    first_received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decision: Mapped[str | None] = mapped_column(String(16))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    shipped_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    retention_until: Mapped[datetime] = mapped_column(UtcDateTime())
    policy_version: Mapped[str] = mapped_column(String(80))


class OrderAlertRow(Base):
    """A post-shipment alert (orders.alerts.v1): a list change made a party of an order already
    shipped match a listed entry. Not an amendment of the decision: a person must look at it."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    order_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    submitted_event_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    decided_event_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    list_change_event_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    list_id: Mapped[str] = mapped_column(String(32), index=True)
    list_version: Mapped[str] = mapped_column(String(128))
    entries: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    shipped_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    acknowledged_by_key_id: Mapped[str | None] = mapped_column(String(KEY_ID_LENGTH))
    acknowledgement: Mapped[str | None] = mapped_column(Text)


class RescreenRun(Base):
    """One list change's re-screening (rescreen.py): the open orders it must reach, published in
    order_id order from `cursor` on, so a restarted instance resumes where the last one stopped."""

    __tablename__ = "rescreen_runs"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in RESCREEN_STATUSES)})", name="status"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    list_change_event_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    list_id: Mapped[str] = mapped_column(String(32))
    new_version: Mapped[str] = mapped_column(String(128))
    change: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    # The open orders are those decided after this moment (the policy's window at the change).
    open_since: Mapped[datetime] = mapped_column(UtcDateTime())
    shipped_since: Mapped[datetime] = mapped_column(UtcDateTime())
    cursor: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    requested: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)


async def create_schema(engine: AsyncEngine) -> None:
    """Migrate the trail database to the newest schema (what records does at start-up)."""
    await migrate(engine, RECORDS_SCHEMA)


RECORDS_SCHEMA = Schema(
    name="records",
    directory=Path(__file__).parent / "migrations",
    metadata=lambda: Base.metadata,
    marker_table="trail_steps",
    baseline="0001",
    lock_key=0x6578_7077_7263_0001,
)
