"""The store-wide audit chain, pure: what each record's hash covers, how positions are linked, and how
a stored chain is checked against the records and the anchors. No I/O (chain.py stores and reads).

15 CFR 762.5(b)(4): electronic records must preserve the original and show every change; the
per-order chain (domain.py) shows an edited or reordered step of one order, but not a deleted order,
nor a rewritten tail. So every stored record (each trail step, reference event and dead letter) and
every act on the store itself (a legal hold placed or released, an alert acknowledged, an order
purged at the end of its retention) gets one position in a single chain, in commit order:

    chain_hash(n) = sha256(canonical(prev = chain_hash(n-1), n, kind, record_id, order_id, record_hash))

`record_hash` covers every field of the record that says what happened (for a trail step its stage,
topic, partition, offset, time received, order and the SHA-256 of its bytes, its per-order hashes).
The head (position and hash) is anchored outside the database (anchors.py): a rewrite of the chain,
a deleted position or a truncated tail then no longer agrees with an anchor.

Canonical form: a JSON array, compact, UTF-8, datetimes as UTC ISO 8601 with microseconds; the
values' order is fixed per kind, so two encodings never collide.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

GENESIS_HASH = "0" * 64
# Problems listed in one verification answer; the rest are counted.
PROBLEM_LIMIT = 1000

Value = str | int | bool | datetime | None


def _plain(value: Value) -> str | int | bool | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()!r} in a hashed record")
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


# json.dumps with these options builds an encoder on every call; one, built once, writes the same.
_CANONICAL = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def canonical(values: Sequence[Value]) -> bytes:
    return _CANONICAL.encode([_plain(v) for v in values]).encode()


def digest(values: Sequence[Value]) -> str:
    return hashlib.sha256(canonical(values)).hexdigest()


# --- what each kind of record's hash covers -----------------------------------------------------


def step_hash(
    *,
    prev_hash: str,
    event_id: str,
    order_id: str,
    seq: int,
    stage: str,
    schema: str,
    topic: str,
    partition: int,
    offset: int,
    submitted_event_id: str,
    received_at: datetime,
    payload_sha256: str,
) -> str:
    """A trail step's hash in its order's chain (hash_version 2): the previous step's hash, and what
    the step is, where it was read and when, and its bytes' SHA-256."""
    return digest(
        [
            "step.v2",
            prev_hash,
            event_id,
            order_id,
            seq,
            stage,
            schema,
            topic,
            partition,
            offset,
            submitted_event_id,
            received_at,
            payload_sha256,
        ]
    )


@dataclass(frozen=True)
class StepFields:
    """A stored trail step as the chains see it (every column but the payload itself)."""

    event_id: str
    order_id: str
    seq: int
    stage: str
    schema: str
    topic: str
    partition: int
    offset: int
    submitted_event_id: str
    received_at: datetime
    payload_sha256: str
    prev_hash: str
    step_hash: str
    hash_version: int

    def record_hash(self) -> str:
        return digest(
            [
                "trail_step",
                self.event_id,
                self.order_id,
                self.seq,
                self.stage,
                self.schema,
                self.topic,
                self.partition,
                self.offset,
                self.submitted_event_id,
                self.received_at,
                self.payload_sha256,
                self.prev_hash,
                self.step_hash,
                self.hash_version,
            ]
        )


def reference_record_hash(
    *,
    event_id: str,
    kind: str,
    topic: str,
    partition: int,
    offset: int,
    key: str | None,
    received_at: datetime,
    payload_sha256: str,
) -> str:
    return digest(
        ["reference_event", event_id, kind, topic, partition, offset, key, received_at, payload_sha256]
    )


def dead_letter_record_hash(
    *,
    event_id: str,
    service: str,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    error_type: str,
    error: str,
    payload_b64: str,
    key_b64: str | None,
    failed_at: datetime,
    received_at: datetime,
) -> str:
    payload = hashlib.sha256(payload_b64.encode()).hexdigest()
    return digest(
        [
            "dead_letter",
            event_id,
            service,
            source_topic,
            source_partition,
            source_offset,
            error_type,
            error,
            payload,
            key_b64,
            failed_at,
            received_at,
        ]
    )


def act_record_hash(kind: str, values: Sequence[Value]) -> str:
    """An act on the store (legal hold, release, acknowledgement, purge): its kind and fields."""
    return digest([kind, *values])


# --- linking ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainEntry:
    """What a transaction adds to the chain: one record, by kind and id, with its content hash."""

    kind: str
    record_id: str
    order_id: str | None
    record_hash: str


@dataclass(frozen=True)
class Linked:
    """A chain position: the entry, its place and its hashes."""

    seq: int
    entry: ChainEntry
    prev_hash: str
    chain_hash: str


def chain_hash(prev_hash: str, seq: int, entry: ChainEntry) -> str:
    return digest(["chain", prev_hash, seq, entry.kind, entry.record_id, entry.order_id, entry.record_hash])


def link(head_seq: int, head_hash: str, entries: Sequence[ChainEntry]) -> list[Linked]:
    """The positions after the head (`head_seq`, `head_hash`) for `entries`, in their order: a whole
    batch is chained in memory, then written under one lock of the head."""
    linked: list[Linked] = []
    prev = head_hash
    for offset, entry in enumerate(entries, start=1):
        seq = head_seq + offset
        current = chain_hash(prev, seq, entry)
        linked.append(Linked(seq, entry, prev, current))
        prev = current
    return linked


# --- checking -----------------------------------------------------------------------------------


@dataclass
class Problems:
    """Everything a verification found, the first PROBLEM_LIMIT listed, all counted."""

    items: list[str]
    total: int = 0

    def add(self, message: str) -> None:
        self.total += 1
        if len(self.items) < PROBLEM_LIMIT:
            self.items.append(message)


@dataclass(frozen=True)
class StoredLink:
    """A chain position as stored."""

    seq: int
    kind: str
    record_id: str
    order_id: str | None
    record_hash: str
    prev_hash: str
    chain_hash: str

    @property
    def entry(self) -> ChainEntry:
        return ChainEntry(self.kind, self.record_id, self.order_id, self.record_hash)

    def describe(self) -> str:
        order = f" of order {self.order_id}" if self.order_id else ""
        return f"chain position {self.seq} ({self.kind} {self.record_id}{order})"


class ChainCheck:
    """Checks stored positions fed in seq order: consecutive positions, each linked to the one
    before, each hash recomputed, each record's current content against the hash it was chained
    with. `expected_prev` is the hash the first fed position must link to (GENESIS_HASH from the
    start, the stored hash of the position before a range otherwise)."""

    def __init__(self, problems: Problems, *, expected_seq: int | None, expected_prev: str | None) -> None:
        self.problems = problems
        self.expected_seq = expected_seq
        self.expected_prev = expected_prev
        self.checked = 0
        self.last: StoredLink | None = None

    def feed(self, link: StoredLink, record_hash: str | None, *, purged: bool) -> None:
        """`record_hash`: the hash of the record as stored now; None if the record is gone
        (`purged`: an order purged at the end of its retention, whose tombstone says so)."""
        self.checked += 1
        where = link.describe()
        if self.expected_seq is not None and link.seq != self.expected_seq:
            missing = (
                f"{self.expected_seq}"
                if link.seq == self.expected_seq + 1
                else f"{self.expected_seq}..{link.seq - 1}"
            )
            self.problems.add(
                f"chain positions {missing} are missing before {where}: deleted from the chain"
                if link.seq > self.expected_seq
                else f"{where}: out of order (expected position {self.expected_seq})"
            )
        if self.expected_prev is not None and link.prev_hash != self.expected_prev:
            self.problems.add(
                f"{where}: prev_hash {link.prev_hash[:12]} is not the hash of the position before"
            )
        if chain_hash(link.prev_hash, link.seq, link.entry) != link.chain_hash:
            self.problems.add(f"{where}: chain_hash does not match its position, kind, record and prev_hash")
        if record_hash is None and not purged:
            self.problems.add(
                f"{where}: the record is missing (deleted) and no purge tombstone accounts for it"
            )
        elif record_hash is not None and record_hash != link.record_hash:
            self.problems.add(f"{where}: the record was changed after it was chained (its hash differs)")
        self.expected_seq = link.seq + 1
        self.expected_prev = link.chain_hash
        self.last = link


@dataclass(frozen=True)
class Anchor:
    """A published head of the chain: the position and hash, when, by which instance; `chain_id`
    names the database's chain (chain_head.chain_id)."""

    chain_id: str
    seq: int
    chain_hash: str
    anchored_at: datetime
    instance: str
    source: str

    def describe(self) -> str:
        return (
            f"anchor of position {self.seq} ({self.source}, {self.anchored_at.isoformat(timespec='seconds')})"
        )


def check_anchor(anchor: Anchor, stored_hash: str | None, last_seq: int) -> str | None:
    """Why `anchor` disagrees with the stored chain (None when it agrees). `stored_hash` is the stored
    chain_hash at the anchor's position, None if there is no such position; `last_seq` the last
    stored position."""
    if anchor.seq > last_seq:
        return (
            f"{anchor.describe()}: the chain ends at position {last_seq}; positions "
            f"{last_seq + 1}..{anchor.seq} were removed (truncated tail)"
        )
    if stored_hash is None:
        return f"{anchor.describe()}: position {anchor.seq} is missing from the chain"
    if stored_hash != anchor.chain_hash:
        return (
            f"{anchor.describe()}: the stored hash {stored_hash[:12]} differs from the anchored "
            f"{anchor.chain_hash[:12]}: the chain up to there was rewritten"
        )
    return None
