"""Anchors: the head of the store-wide audit chain (audit.py), kept outside the trail database.

At an interval (`EXPORTWATCH_ANCHOR_INTERVAL_S`) and when records stops, each instance reads the
chain's head and, if it moved, appends it to its anchor file (`EXPORTWATCH_ANCHOR_FILE`, one JSON
object a line, fsync'd) and publishes it to `records.anchors.v1` (kept forever). Every instance
follows that topic in full (`AnchorBook`), so any of them can check the stored chain against every
anchor published (GET /audit/verify): a rewritten chain no longer has the anchored hash at the
anchored position, a truncated one no longer reaches it. Changes after the newest anchor are not
covered by an anchor: anchor often enough for the exposure you accept.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records.audit import Anchor
from services.records.models import ChainHead
from shared.codec import decode_json
from shared.events import EXPORTWATCH_NS, envelope_dump
from shared.kafka import Incoming, Outgoing, Publish, PublishError
from shared.lifecycle_events import ChainAnchor

log = logging.getLogger("exportwatch.records.anchors")


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def anchor_of(event: ChainAnchor, source: str) -> Anchor:
    return Anchor(event.chain_id, event.seq, event.chain_hash, event.anchored_at, event.instance, source)


@dataclass
class AnchorBook:
    """The anchors this instance knows: every one on the anchors topic (the follower adds them) and,
    read when asked, those in its anchor file."""

    file: Path
    _published: dict[str, Anchor] = field(default_factory=dict)

    def add(self, event: ChainAnchor) -> None:
        self._published[event.event_id] = anchor_of(event, "records.anchors.v1")

    def published(self) -> list[Anchor]:
        return list(self._published.values())

    def read_file(self) -> tuple[list[Anchor], list[str]]:
        """The file's anchors, and what is wrong with lines that are not anchors."""
        if not self.file.exists():
            return [], []
        anchors: list[Anchor] = []
        problems: list[str] = []
        with self.file.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    anchors.append(
                        anchor_of(ChainAnchor.model_validate_json(line), f"{self.file.name}:{number}")
                    )
                except ValidationError as exc:
                    problems.append(
                        f"anchor file {self.file}: line {number} is not an anchor ({exc.errors()[0]['msg']})"
                    )
        return anchors, problems


@dataclass(frozen=True)
class AnchorFollower:
    """records.anchors.v1 -> the book (a message that is not an anchor is dead-lettered)."""

    book: AnchorBook

    async def __call__(self, message: Incoming) -> list[Outgoing]:
        self.book.add(ChainAnchor.model_validate(decode_json(message)))
        return []


class Anchorer:
    """Anchors the head when it moved: to the file first (local, cannot be refused), then to the
    topic; a publish the broker refused is tried again at the next anchoring."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        publish: Publish,
        *,
        topic: str,
        file: Path,
        instance: str | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._publish = publish
        self._topic = topic
        self._file = file
        self._instance = instance or instance_name()
        self._last_filed: int | None = None
        self._last_published: int | None = None

    async def head(self) -> ChainHead | None:
        async with self._sessionmaker() as session:
            return await session.scalar(select(ChainHead).where(ChainHead.id == 1))

    async def anchor(self) -> ChainAnchor | None:
        """Anchor the current head if it moved since this instance last anchored it; the anchor."""
        head = await self.head()
        if head is None or head.seq == 0:
            return None
        if head.seq == self._last_filed and head.seq == self._last_published:
            return None
        event = ChainAnchor(
            event_id=str(uuid.uuid5(EXPORTWATCH_NS, f"anchor:{head.chain_id}:{head.seq}")),
            chain_id=head.chain_id,
            seq=head.seq,
            chain_hash=head.chain_hash,
            anchored_at=head.updated_at,
            instance=self._instance,
        )
        value = envelope_dump(event)
        if head.seq != self._last_filed:
            self._append(value)
            self._last_filed = head.seq
        try:
            await self._publish(Outgoing(self._topic, head.chain_id, value))
            self._last_published = head.seq
        except PublishError as exc:
            log.warning("anchor of position %d filed, not yet published: %s", head.seq, exc)
        return event

    def _append(self, value: bytes) -> None:
        self._file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self._file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(descriptor, value + b"\n")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
