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


# The details a listing's licence terms are read from (the CSL's Entity List and MEU rows); risk
# applies "for all items subject to the EAR" and named ECCNs or supplements differently.
LICENCE_DETAILS = ("license_requirement", "license_policy", "federal_register_notice", "start_date")


def licence_terms(entry: ListEntry) -> dict[str, str | None]:
    """The entry's licence requirement, licence policy, Federal Register notice and start date."""
    details = dict(entry.details)
    return {key: details.get(key) or None for key in LICENCE_DETAILS}
