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

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records import chain
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


# Read as plain columns (no ORM objects, and not the JSON column: the bytes are what is exported).
_SELECTED = (
    ChainLinkRow.seq,
    ChainLinkRow.prev_hash,
    ChainLinkRow.chain_hash,
    ChainLinkRow.record_hash,
    TrailStep.order_id,
    TrailStep.seq,
    TrailStep.stage,
    TrailStep.schema,
    TrailStep.event_id,
    TrailStep.submitted_event_id,
    TrailStep.topic,
    TrailStep.partition,
    TrailStep.offset,
    TrailStep.received_at,
    TrailStep.payload_sha256,
    TrailStep.prev_hash,
    TrailStep.step_hash,
    TrailStep.hash_version,
    TrailStep.payload_raw,
)


def _row(values: Any) -> dict[str, Any]:
    row = dict(zip(COLUMNS, values, strict=True))
    row["received_at"] = row["received_at"].isoformat(timespec="microseconds")
    # The bytes as received (UTF-8 JSON): sha256 of this text's UTF-8 is payload_sha256.
    row["payload"] = bytes(row["payload"]).decode("utf-8", "replace")
    return row


async def _pages(
    sessions: async_sessionmaker[AsyncSession], start: datetime | None, end: datetime | None
) -> AsyncIterator[list[dict[str, Any]]]:
    async with sessions() as session:
        low, high = await chain.seq_bounds(session, start, end)
    after = low - 1
    while after < high:
        upto = min(after + PAGE, high)
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(*_SELECTED)
                    .select_from(ChainLinkRow)
                    .join(TrailStep, ChainLinkRow.record_id == TrailStep.event_id)
                    .where(
                        ChainLinkRow.seq > after, ChainLinkRow.seq <= upto, ChainLinkRow.kind == "trail_step"
                    )
                    .order_by(ChainLinkRow.seq)
                )
            ).all()
            page = [_row(values) for values in rows]
        if page:
            yield page
        after = upto


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
