"""GET /exports/trail: every trail step recorded in a period, with its hashes, for an auditor.

Streamed in keyset pages of the store-wide chain (position order, `PAGE` steps at a time, each page
read in its own short transaction), so memory stays the same whatever the period holds. Each row has
the step as stored (the bytes received as text, whose SHA-256 is `payload_sha256`), its per-order
hashes and its chain position and hashes: with audit.py's rules an auditor can recompute both chains
from the export alone.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records.models import ChainLinkRow, TrailStep

ExportFormat = Literal["jsonl", "csv"]
PAGE = 500
COLUMNS = (
    "chain_seq",
    "chain_prev_hash",
    "chain_hash",
    "record_hash",
    "order_id",
    "seq",
    "stage",
    "schema",
    "event_id",
    "submitted_event_id",
    "topic",
    "partition",
    "offset",
    "received_at",
    "payload_sha256",
    "prev_hash",
    "step_hash",
    "hash_version",
    "payload",
)


def _row(link: ChainLinkRow, step: TrailStep) -> dict[str, Any]:
    return {
        "chain_seq": link.seq,
        "chain_prev_hash": link.prev_hash,
        "chain_hash": link.chain_hash,
        "record_hash": link.record_hash,
        "order_id": step.order_id,
        "seq": step.seq,
        "stage": step.stage,
        "schema": step.schema,
        "event_id": step.event_id,
        "submitted_event_id": step.submitted_event_id,
        "topic": step.topic,
        "partition": step.partition,
        "offset": step.offset,
        "received_at": step.received_at.isoformat(timespec="microseconds"),
        "payload_sha256": step.payload_sha256,
        "prev_hash": step.prev_hash,
        "step_hash": step.step_hash,
        "hash_version": step.hash_version,
        # The bytes as received (UTF-8 JSON): sha256 of this text's UTF-8 is payload_sha256.
        "payload": step.payload_raw.decode("utf-8", "replace"),
    }


async def _pages(
    sessions: async_sessionmaker[AsyncSession], start: datetime | None, end: datetime | None
) -> AsyncIterator[list[dict[str, Any]]]:
    after = 0
    window = []
    if start is not None:
        window.append(ChainLinkRow.recorded_at >= start)
    if end is not None:
        window.append(ChainLinkRow.recorded_at < end)
    while True:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(ChainLinkRow, TrailStep)
                    .join(
                        TrailStep,
                        and_(ChainLinkRow.kind == "trail_step", ChainLinkRow.record_id == TrailStep.event_id),
                    )
                    .where(ChainLinkRow.seq > after, *window)
                    .order_by(ChainLinkRow.seq)
                    .limit(PAGE)
                )
            ).all()
            page = [_row(link, step) for link, step in rows]
        if not page:
            return
        yield page
        after = page[-1]["chain_seq"]


async def export_trail(
    sessions: async_sessionmaker[AsyncSession],
    *,
    start: datetime | None,
    end: datetime | None,
    fmt: ExportFormat,
) -> AsyncIterator[bytes]:
    """The export's bytes, a page at a time: JSON lines, or CSV with a header row."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        yield buffer.getvalue().encode()
        async for page in _pages(sessions, start, end):
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
            writer.writerows(page)
            yield buffer.getvalue().encode()
        return
    async for page in _pages(sessions, start, end):
        yield "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in page).encode()
