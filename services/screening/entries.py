"""A party as a list publishes it: what the loaders produce and the matcher indexes.

Kept apart from `domain` so that the matcher (`index`), which `domain` builds on, can name it at
run time: the compiled matcher (see `deploy/native.py`) checks the types it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EntryType = Literal["individual", "entity", "vessel", "aircraft"]


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One party on one list, as its publisher lists it (names unnormalised)."""

    source_id: str
    list_id: str
    entry_id: str
    name: str
    aliases: tuple[str, ...]
    entry_type: EntryType | None
    programs: tuple[str, ...]
    countries: tuple[str, ...]
    details: tuple[tuple[str, str], ...] = ()
    # Postal addresses as the list writes them, one string each (street, city, postcode, country).
    addresses: tuple[str, ...] = ()
    # The aliases (a subset of `aliases`) the publisher marks weak / low quality: OFAC "weak AKAs"
    # (OFAC FAQ 122), UN QUALITY "Low", OFSI "Low quality".
    weak_aliases: tuple[str, ...] = ()
    # A hash of everything the list says about this entry (names, type, programmes, countries,
    # addresses, details): tells a changed entry from an unchanged one across list versions.
    content_version: str = ""
