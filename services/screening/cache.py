"""Screening's memory of the names it has already screened on the lists in use.

An ERP sends the same customers again and again (in the pipeline bench, 85% of the party names of a
run were seen earlier in it), and the matches of a name depend only on the name, its country and
address, and the lists and policy of the snapshot screened against: the matcher has no clock and no
other input. So the matches found for a party are kept, per snapshot, in a bounded LRU, and a
list swap (`lists update`, a reload: a new `ListSnapshot`) empties it, so that no match found on an
older version of a list is ever reused. What a reviewer cleared is applied after the cache, on every
order (clearing.set_aside), so a clearance takes effect on the next order as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.screening.registry import ListSnapshot
from shared.events import Party, PartyMatch, PartyScreening, Screening

# A party as the matcher reads it: name, country, and the address it weighs (domain.Screener).
PartyKey = tuple[str, str, str | None]


def party_key(party: Party) -> PartyKey:
    return party.name, party.country, ", ".join(part for part in (party.address, party.city) if part) or None


@dataclass
class ScreeningCache:
    """At most `size` parties' matches on `snapshot` (0: no cache, every party screened)."""

    size: int
    snapshot: ListSnapshot | None = None
    hits: int = 0
    misses: int = 0
    _matches: OrderedDict[PartyKey, tuple[PartyMatch, ...]] = field(default_factory=OrderedDict)

    def __len__(self) -> int:
        return len(self._matches)

    def screen_parties(self, snapshot: ListSnapshot, parties: Sequence[Party]) -> Screening:
        """`snapshot.screener.screen_parties(parties)`, the parties seen before on this snapshot
        answered from memory."""
        if snapshot is not self.snapshot:
            self._matches.clear()
            self.snapshot = snapshot
        keys = [party_key(party) for party in parties]
        unseen = {key: party for key, party in zip(keys, parties, strict=True) if key not in self._matches}
        # The screener's own answer for the unseen parties (none: still its header, the lists and
        # policy screened against), so that the result is the one the screener gives.
        fresh = snapshot.screener.screen_parties(list(unseen.values()))
        found = {key: tuple(screened.matches) for key, screened in zip(unseen, fresh.parties, strict=True)}
        self.misses += len(unseen)
        self.hits += len(keys) - len(unseen)
        results = []
        for key, party in zip(keys, parties, strict=True):
            matches = found.get(key)
            if matches is None:
                matches = self._matches[key]
                self._matches.move_to_end(key)
            results.append(
                PartyScreening(role=party.role, name=party.name, country=party.country, matches=list(matches))
            )
        if self.size > 0:
            self._matches.update(found)
            while len(self._matches) > self.size:
                self._matches.popitem(last=False)
        return fresh.model_copy(update={"parties": results})
