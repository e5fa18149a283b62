"""The store-wide audit chain in the trail database: append under the head's lock, and the chain
entry of each kind of stored row. The hashing and checking rules are pure, in audit.py.

One lock per transaction: `append` locks the single `chain_head` row (an UPDATE first, so SQLite
takes its write lock before reading and PostgreSQL its row lock), links every entry of the
transaction in memory (audit.link), inserts them and moves the head, all before the transaction
commits. So positions follow commit order across any number of records instances, and a batch of
events written in one transaction (one consumer poll) is chained with one lock. The head is taken
last, after the order rows a transaction locks: a transaction holding the head never waits for an
order row, so the two kinds of lock cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.records.audit import (
    ChainEntry,
    Linked,
    StepFields,
    act_record_hash,
    dead_letter_record_hash,
    link,
    reference_record_hash,
)
from services.records.models import (
    Base,
    ChainHead,
    ChainLinkRow,
    LegalHold,
    OrderAlertRow,
    PurgedOrder,
    ReferenceEvent,
    StoredDeadLetter,
    TrailStep,
)


async def lock_head(session: AsyncSession) -> ChainHead:
    """The head row, locked until the transaction ends."""
    await session.execute(update(ChainHead).where(ChainHead.id == 1).values(seq=ChainHead.seq))
    head = await session.scalar(
        select(ChainHead).where(ChainHead.id == 1).with_for_update().execution_options(populate_existing=True)
    )
    if head is None:
        raise RuntimeError("the trail database has no chain_head row: migrate it (shared/migrations.py)")
    return head


async def append(session: AsyncSession, entries: Sequence[ChainEntry], now: datetime) -> list[Linked]:
    """Chain `entries`, in their order, after the current head, in the caller's transaction: the one
    call a writer makes per transaction (records' batched writes call it once per poll)."""
    if not entries:
        return []
    head = await lock_head(session)
    linked = link(head.seq, head.chain_hash, entries)
    await session.execute(
        insert(Base.metadata.tables[ChainLinkRow.__tablename__]),
        [
            {
                "seq": position.seq,
                "kind": position.entry.kind,
                "record_id": position.entry.record_id,
                "order_id": position.entry.order_id,
                "record_hash": position.entry.record_hash,
                "prev_hash": position.prev_hash,
                "chain_hash": position.chain_hash,
                "recorded_at": now,
            }
            for position in linked
        ],
    )
    head.seq = linked[-1].seq
    head.chain_hash = linked[-1].chain_hash
    head.updated_at = now
    return linked


async def seq_bounds(session: AsyncSession, start: datetime | None, end: datetime | None) -> tuple[int, int]:
    """The positions chained in [start, end): (first, last), first > last when none. Walks then go
    by position (the primary key) between them, a page at a time, at the same cost at any depth."""
    first = select(func.min(ChainLinkRow.seq))
    last = select(func.max(ChainLinkRow.seq))
    if start is not None:
        first = first.where(ChainLinkRow.recorded_at >= start)
        last = last.where(ChainLinkRow.recorded_at >= start)
    if end is not None:
        first = first.where(ChainLinkRow.recorded_at < end)
        last = last.where(ChainLinkRow.recorded_at < end)
    low, high = await session.scalar(first), await session.scalar(last)
    return (low, high) if low is not None and high is not None else (1, 0)


# --- the entry of each stored row ----------------------------------------------------------------


def step_fields(step: TrailStep) -> StepFields:
    return StepFields(
        event_id=step.event_id,
        order_id=step.order_id,
        seq=step.seq,
        stage=step.stage,
        schema=step.schema,
        topic=step.topic,
        partition=step.partition,
        offset=step.offset,
        submitted_event_id=step.submitted_event_id,
        received_at=step.received_at,
        payload_sha256=step.payload_sha256,
        prev_hash=step.prev_hash,
        step_hash=step.step_hash,
        hash_version=step.hash_version,
    )


def step_entry(fields: StepFields) -> ChainEntry:
    return ChainEntry("trail_step", fields.event_id, fields.order_id, fields.record_hash())


def reference_hash(row: ReferenceEvent) -> str:
    return reference_record_hash(
        event_id=row.event_id,
        kind=row.kind,
        topic=row.topic,
        partition=row.partition,
        offset=row.offset,
        key=row.key,
        received_at=row.received_at,
        payload_sha256=row.payload_sha256,
    )


def dead_letter_hash(row: StoredDeadLetter) -> str:
    return dead_letter_record_hash(
        event_id=row.event_id,
        service=row.service,
        source_topic=row.source_topic,
        source_partition=row.source_partition,
        source_offset=row.source_offset,
        error_type=row.error_type,
        error=row.error,
        payload_b64=row.payload_b64,
        key_b64=row.key_b64,
        failed_at=row.failed_at,
        received_at=row.received_at,
    )


def hold_placed_hash(row: LegalHold) -> str:
    return act_record_hash(
        "legal_hold",
        [row.hold_id, row.order_id, row.reason, row.placed_by_name, row.placed_by_key_id, row.placed_at],
    )


def hold_released_hash(row: LegalHold) -> str:
    return act_record_hash(
        "hold_released",
        [
            row.hold_id,
            row.order_id,
            row.released_at,
            row.released_by_name,
            row.released_by_key_id,
            row.release_reason,
        ],
    )


def alert_acknowledged_hash(row: OrderAlertRow) -> str:
    return act_record_hash(
        "alert_acknowledged",
        [
            row.event_id,
            row.order_id,
            row.acknowledged_at,
            row.acknowledged_by,
            row.acknowledged_by_key_id,
            row.acknowledgement,
        ],
    )


def purge_hash(row: PurgedOrder) -> str:
    return act_record_hash(
        "purge",
        [
            row.purge_id,
            row.order_id,
            row.purged_at,
            row.purged_by,
            row.steps,
            row.last_step_hash,
            row.first_received_at,
            row.last_received_at,
            row.decision,
            row.decided_at,
            row.shipped_at,
            row.retention_until,
            row.policy_version,
        ],
    )
