"""Loaders of restricted-party lists in their publishers' own formats: one module per format
(ofac, csl, dpl, un, uk), sharing reading.py, and `LOADERS`, the kinds a source may be.

Which folders are loaded is configuration (`EXPORTWATCH_SCREENING_SOURCES`, e.g.
"ofac_sdn:screening/us_ofac_sdn/2023-12-28,un_sc:screening/un_sc_consolidated/2026-02-27", paths
relative to the data directory; one folder per kind). docs/architecture.md says how to add a format.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.screening.lists.csl import csl_list_id, load_csl
from services.screening.lists.dpl import load_bis_dpl
from services.screening.lists.ofac import load_ofac_non_sdn, load_ofac_sdn, non_sdn_list
from services.screening.lists.reading import (
    MANIFEST,
    ListFormatError,
    LoadedSource,
    country_code,
    country_codes,
    dpl_entry_id,
    entry_content_version,
    folder_date,
    new_entry,
)
from services.screening.lists.uk import load_uk_ofsi
from services.screening.lists.un import load_un_sc

__all__ = [
    "LOADERS",
    "MANIFEST",
    "ListFormatError",
    "LoadedSource",
    "SourceSpec",
    "country_code",
    "country_codes",
    "csl_list_id",
    "dpl_entry_id",
    "entry_content_version",
    "folder_date",
    "load_bis_dpl",
    "load_csl",
    "load_ofac_non_sdn",
    "load_ofac_sdn",
    "load_source",
    "load_sources",
    "load_uk_ofsi",
    "load_un_sc",
    "new_entry",
    "non_sdn_list",
    "parse_sources",
]

SETTING = "EXPORTWATCH_SCREENING_SOURCES"

# A source kind -> its loader (folder, source id) -> the loaded source.
LOADERS: dict[str, Callable[[Path, str], LoadedSource]] = {
    "ofac_sdn": load_ofac_sdn,
    "ofac_non_sdn": load_ofac_non_sdn,
    "csl": load_csl,
    "bis_dpl": load_bis_dpl,
    "un_sc": load_un_sc,
    "uk_ofsi": load_uk_ofsi,
}


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    folder: str


def parse_sources(spec: str) -> list[SourceSpec]:
    """ "kind:folder,kind:folder" -> specs; refuses unknown kinds and duplicates, naming the setting.

    One folder per kind: `lists update` replaces a kind's source with the publisher's newer file."""
    specs: list[SourceSpec] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        kind, sep, folder = part.partition(":")
        if not sep or not folder.strip():
            raise ValueError(f"{SETTING}={spec!r}: {part!r} is not 'kind:folder'")
        if kind.strip() not in LOADERS:
            raise ValueError(f"{SETTING}={spec!r}: unknown kind {kind!r}; use one of {sorted(LOADERS)}")
        specs.append(SourceSpec(kind.strip(), folder.strip().strip("/")))
    if not specs:
        raise ValueError(f"{SETTING}={spec!r}: name at least one list source")
    if len({s.folder for s in specs}) != len(specs):
        raise ValueError(f"{SETTING}={spec!r}: a folder is named twice")
    kinds = Counter(s.kind for s in specs)
    if twice := sorted(k for k, n in kinds.items() if n > 1):
        raise ValueError(
            f"{SETTING}={spec!r}: kind {twice[0]!r} is named twice; configure one folder per kind "
            "(a list update replaces that kind's source)"
        )
    return specs


def load_source(kind: str, folder: Path) -> LoadedSource:
    """One source folder in the format of `kind`; the source id is the kind (one folder per kind)."""
    return LOADERS[kind](folder, kind)


def load_sources(data_dir: Path, spec: str) -> list[LoadedSource]:
    return [load_source(s.kind, data_dir / s.folder) for s in parse_sources(spec)]
