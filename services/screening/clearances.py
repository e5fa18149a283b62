"""The good-guy list as every screening instance reads it: `screening.clearances.v1` into a book.

Clearances travel on a compacted topic keyed `list_id:entry_id:name` (the latest clearance per pair
survives compaction; a tombstone on the key revokes it). Every instance must know every clearance,
so the service follows the topic in full on the shared consumer loop (`Follows`, no consumer
group) and hands each message to `ClearanceFollower`. A message that is not a clearance raises, and
the loop dead-letters it like any other. The rule itself is in clearing.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.screening.clearing import ClearanceBook
from shared.codec import decode_json
from shared.events import ScreeningClearance
from shared.kafka import Incoming, Outgoing
from shared.logging import personal

log = logging.getLogger("exportwatch.screening.clearances")


@dataclass(frozen=True)
class ClearanceFollower:
    """Kafka -> the book: a clearance is put under its key, a tombstone revokes the key's clearance."""

    book: ClearanceBook

    async def __call__(self, message: Incoming) -> list[Outgoing]:
        key = message.key.decode("utf-8", "replace") if message.key is not None else None
        if message.value is None:
            # A tombstone: the clearance under this key is revoked (and compaction will drop both).
            if key is not None and self.book.revoke(key):
                # The key ends with the cleared party's normalised name (shared/events.py clearance_key):
                # the list entry is logged, the name only where personal data may be.
                list_id, _, rest = key.partition(":")
                entry_id, _, name = rest.partition(":")
                log.info("clearance of %s:%s for %s revoked", list_id, entry_id, personal(name))
            return []
        # PoisonMessage or ValidationError: the consumer loop dead-letters the message.
        clearance = ScreeningClearance.model_validate(decode_json(message))
        self.book.put(key or clearance.key, clearance)
        return []
