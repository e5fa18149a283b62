"""The reference data the classifier works from, as one value that can be swapped whole.

An eCFR update replaces the CCL while orders are being classified; the handler and the API each
read the current `ReferenceData` once per order or request, so a line is never checked against one
CCL and ranked against another.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from services.classifier.ccl import load_ccl
from services.classifier.domain import Ccl, Suggester
from services.classifier.eu_annex import EuAnnex, EuAnnexError, load_eu_annex
from services.classifier.suggest import SuggestionIndex
from shared.events import EccnSuggestion

log = logging.getLogger("exportwatch.classifier")

SUGGESTION_CACHE_SIZE = 4096


@dataclass(frozen=True)
class ReferenceData:
    ccl: Ccl
    eu_annex: EuAnnex | None
    suggestions: SuggestionIndex
    # The suggestions for a description already ranked on this CCL: the ERP sends the same
    # unclassified products again and again, ranking one is most of a line's cost, and the ranking
    # depends on nothing but the description, the HS code and this index (a CCL update builds a new
    # ReferenceData, and with it an empty cache).
    suggest: Suggester = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ranked = lru_cache(maxsize=SUGGESTION_CACHE_SIZE)(self._ranked)
        object.__setattr__(self, "suggest", lambda description, hs_code: list(ranked(description, hs_code)))

    def _ranked(self, description: str, hs_code: str | None) -> tuple[EccnSuggestion, ...]:
        return tuple(self.suggestions.suggest(description, hs_code))

    @classmethod
    def build(cls, ccl: Ccl, eu_annex: EuAnnex | None) -> ReferenceData:
        return cls(ccl=ccl, eu_annex=eu_annex, suggestions=SuggestionIndex.build(ccl, eu_annex))


def load_reference_data(data_dir: Path, ccl_cache_dir: Path | None) -> ReferenceData:
    """The newest CCL (reference copy or eCFR cache) and the EU Annex I; without the EU file the
    suggester ranks the CCL's own texts only (logged, not fatal: it adds leads, not controls)."""
    ccl = load_ccl(data_dir, ccl_cache_dir)
    try:
        eu_annex: EuAnnex | None = load_eu_annex(data_dir)
    except EuAnnexError as exc:
        log.warning("EU Annex I not loaded, suggestions use the CCL text only: %s", exc)
        eu_annex = None
    return ReferenceData.build(ccl, eu_annex)
