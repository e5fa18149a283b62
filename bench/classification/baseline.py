"""The walking skeleton's suggester, kept as the benchmark's baseline (token overlap, IDF-weighted).

Copied from services/classifier/suggest.py as of the skeleton commit; not used by the service.

Pure and deterministic. A suggestion is a lead for a classifier (a person), never a classification:
its score is the share of the description's words, weighted by how rare they are on the CCL
(inverse document frequency), that the entry's heading or item paragraph contains.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from unidecode import unidecode

from services.classifier.domain import Ccl
from shared.events import EccnSuggestion

_STOPWORDS = frozenset(
    """a an and are as at be been by for from has have in into is it its not of on or other such than
    that the their therefor thereof these this those to under which with within without follows see
    list item items controlled specially designed entry entries eccn n e s""".split()
)
_MATCHED_TEXT_LIMIT = 240


def terms(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", unidecode(text).lower())
    return [_stem(w) for w in words if w not in _STOPWORDS and len(w) > 1 and not w.isdigit()]


def _stem(word: str) -> str:
    # Just enough to meet "cameras"/"camera", "imaging"/"image", "switches"/"switch".
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


@dataclass(frozen=True, slots=True)
class _Document:
    eccn: str
    text: str
    terms: frozenset[str]


class OverlapIndex:
    """Headings of every CCL entry, and item paragraphs where the CCL copy has them (categories
    1, 3, 4, 5), each read together with its entry's heading."""

    def __init__(self, documents: Iterable[_Document], headings: Mapping[str, str]) -> None:
        self._documents = tuple(documents)
        self._headings = dict(headings)
        self._postings: dict[str, list[int]] = {}
        for index, document in enumerate(self._documents):
            for term in document.terms:
                self._postings.setdefault(term, []).append(index)
        count = max(len(self._documents), 1)
        self._idf = {term: math.log(1 + count / len(docs)) for term, docs in self._postings.items()}
        self._unknown_idf = math.log(1 + count)

    @classmethod
    def build(cls, ccl: Ccl) -> OverlapIndex:
        documents: list[_Document] = []
        for entry in ccl.entries.values():
            heading_terms = frozenset(terms(entry.heading))
            documents.append(_Document(entry.eccn, entry.heading, heading_terms))
            for paragraph, text in entry.paragraph_texts.items():
                documents.append(
                    _Document(f"{entry.eccn}.{paragraph}", text, heading_terms | frozenset(terms(text)))
                )
        return cls(documents, {eccn: entry.heading for eccn, entry in ccl.entries.items()})

    def __len__(self) -> int:
        return len(self._documents)

    def suggest(self, description: str, *, limit: int = 3, min_score: float = 0.25) -> list[EccnSuggestion]:
        query = frozenset(terms(description))
        if not query:
            return []
        weight = {term: self._idf.get(term, self._unknown_idf) for term in query}
        total = sum(weight.values())
        candidates = {index for term in query for index in self._postings.get(term, ())}
        ranked: list[tuple[float, int, str, int]] = []
        for index in candidates:
            document = self._documents[index]
            score = sum(weight[term] for term in query & document.terms) / total
            # Higher score first; among equals the shorter (more specific) text, then the code.
            ranked.append((-score, len(document.terms), document.eccn, index))
        ranked.sort()
        suggestions: list[EccnSuggestion] = []
        seen: set[str] = set()
        for negative_score, _, eccn, index in ranked:
            score = round(-negative_score, 3)
            if score < min_score or len(suggestions) == limit:
                break
            if eccn in seen:
                continue
            seen.add(eccn)
            text = self._documents[index].text
            if len(text) > _MATCHED_TEXT_LIMIT:
                text = text[: _MATCHED_TEXT_LIMIT - 1] + "…"
            heading = self._headings[eccn.split(".", 1)[0]]
            suggestions.append(EccnSuggestion(eccn=eccn, score=score, heading=heading, matched_text=text))
        return suggestions
