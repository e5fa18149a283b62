"""The reference data the classifier works from, as one value that can be swapped whole.

An eCFR update replaces the CCL while orders are being classified; the handler and the API each
read the current `ReferenceData` once per order or request, so a line is never checked against one
CCL and ranked against another.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from services.classifier.ccl import load_ccl
from services.classifier.domain import Ccl
from services.classifier.eu_annex import EuAnnex, EuAnnexError, load_eu_annex
from services.classifier.suggest import SuggestionIndex

log = logging.getLogger("exportwatch.classifier")


@dataclass(frozen=True)
class ReferenceData:
    ccl: Ccl
    eu_annex: EuAnnex | None
    suggestions: SuggestionIndex

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
