"""Ranked ECCN suggestions for a line nobody has classified: which control-list texts fit it best.

Pure and deterministic. A suggestion is a lead for a classifier (a person), never a classification.

What is ranked: every CCL entry, by its heading and by each item paragraph read with the paragraphs
above it and the entries it names; for paragraphs the loaded CCL has no text for (the reference copy
has item text only for categories 1, 3, 4 and 5, and lost some first paragraphs), the paragraphs of
the EU Annex I entry with the same number (Wassenaar items share their numbers; eu_annex.py). Ranking is Okapi BM25 over terms normalised by
`vocabulary` (spelling, units such as µm/μm and GHz, abbreviations), with the description expanded
by the CCL's own words for what it names and by its HS heading's subject, and two priors the ECCN
grammar gives: software is product group D, technology E, everything else A-C; the HS heading's
usual CCL categories (HS 8542 -> 3A). An entry's score is its best text's; each entry is suggested
once, at the paragraph whose text matched.

EAR99 is suggested too - with a fixed score, so it ranks above every entry that matched worse: a
description no CCL text fits well is most likely an item no ECCN describes (15 CFR 734.3(c)).
Scores are BM25 divided by the query's own ceiling, so they lie in [0, 1] and compare across lines.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from services.classifier.domain import EAR99, EAR99_HEADING, Ccl, ParsedEccn, parse_eccn
from services.classifier.eu_annex import EuAnnex, paragraph_texts
from services.classifier.vocabulary import expansions, hs_hint, is_civil, product_group_hint, terms
from shared.events import EccnSuggestion

_REFERENCE = re.compile(r"\b(\d[A-E]\d{3})((?:\.(?:[a-z]|\d{1,3}))*)")

K1 = 1.2
B = 0.75
# Query terms from the description weigh 1; the CCL words its abbreviations and product words
# stand for a little less; the HS heading's subject less again (it names a class of goods).
EXPANSION_WEIGHT = 0.6
HS_WEIGHT = 0.4
# Product group the description does not point to (a commodity line against a software entry).
OTHER_GROUP_FACTOR = 0.35
# An entry in a CCL category the HS heading usually falls under.
HS_GROUP_FACTOR = 1.3
UNKNOWN_TERM_SHARE = 0.5
# EAR99's place in the ranking: above every entry whose text matched worse than this.
EAR99_SCORE = 0.12
MATCHED_TEXT_LIMIT = 240
MAX_REFERENCES = 3
# A description of a civil, commercial or consumer item: the CCL's x9xx entries (AT-only catch-alls
# such as 9A991 civil aircraft, 7A994, 5A992) are where such versions are usually listed.
CIVIL_FACTOR = 1.3
DEFAULT_LIMIT = 5


@dataclass(frozen=True, slots=True)
class _Text:
    eccn: str  # entry, or entry and paragraph: "3A001", "3A001.a.7"
    entry: str
    matched_text: str
    source: str  # "ccl" or "eu_annex_i"


class SuggestionIndex:
    """BM25 postings over the CCL's headings and item paragraphs (and the EU Annex I paragraphs the
    CCL copy lacks)."""

    def __init__(self, texts: Iterable[tuple[_Text, list[str]]], headings: Mapping[str, str]) -> None:
        self._texts: list[_Text] = []
        lengths: list[int] = []
        postings: dict[str, list[tuple[int, int]]] = {}
        for index, (text, words) in enumerate(texts):
            self._texts.append(text)
            lengths.append(len(words))
            for term, count in Counter(words).items():
                postings.setdefault(term, []).append((index, count))
        count = max(len(self._texts), 1)
        average = (sum(lengths) / count) or 1.0
        self._norm = [K1 * (1 - B + B * length / average) for length in lengths]
        self._postings = postings
        # BM25's idf, kept positive for terms in more than half the texts (Lucene's form).
        self._idf = {
            term: math.log(1 + (count - len(docs) + 0.5) / (len(docs) + 0.5))
            for term, docs in postings.items()
        }
        self._max_idf = max(self._idf.values(), default=1.0)
        self._headings = dict(headings)

    @classmethod
    def build(cls, ccl: Ccl, eu_annex: EuAnnex | None = None) -> SuggestionIndex:
        texts: list[tuple[_Text, list[str]]] = []
        # The same text is read many times (a paragraph's ancestors with each of its children, the
        # entries other texts name): each once per build. The lists are only read, never changed.
        read: dict[str, list[str]] = {}

        def words_of(text: str) -> list[str]:
            found = read.get(text)
            if found is None:
                found = read[text] = terms(text)
            return found

        def referred(eccn: str, text: str) -> list[str]:
            # "Equipment not controlled by 5A002", "containing integrated circuits ... 3A090.a": an
            # entry defined by another one is about the same kind of item, so the text it names is
            # read with it (the catch-all x9xx entries get the words of the entries they complement).
            found: list[str] = []
            for name, path in _REFERENCE.findall(text)[:MAX_REFERENCES]:
                other = ccl.entries.get(name)
                if name == eccn or other is None:
                    continue
                paragraph = other.paragraph_texts.get(path.lstrip(".")) if path else None
                found += words_of(paragraph or other.heading)
            return found

        for entry in ccl.entries.values():
            if entry.itar_pointer:
                continue  # points to the USML: nothing the EAR classifies
            heading_terms = words_of(entry.heading) + referred(entry.eccn, entry.heading)
            texts.append((_Text(entry.eccn, entry.eccn, entry.heading, "ccl"), heading_terms))
            # EU text fills the paragraphs the CCL copy lacks (eu_annex.paragraph_texts).
            sourced = paragraph_texts(entry, eu_annex)
            paragraphs = {paragraph: text for paragraph, (text, _) in sourced.items()}
            for paragraph, (text, source) in sourced.items():
                if _reserved(text):
                    continue
                path = paragraph.split(".")
                ancestors = [paragraphs.get(".".join(path[:depth])) for depth in range(1, len(path))]
                words = [word for above in ancestors if above for word in words_of(above)]
                words += words_of(text) + referred(entry.eccn, text) + heading_terms
                parent = next((above for above in reversed(ancestors) if above), None)
                shown = f"{parent} … {text}" if parent and len(text) < 80 else text
                texts.append((_Text(f"{entry.eccn}.{paragraph}", entry.eccn, shown, source), words))
        return cls(texts, {eccn: entry.heading for eccn, entry in ccl.entries.items()})

    def __len__(self) -> int:
        return len(self._texts)

    def suggest(
        self, description: str, hs_code: str | None = None, *, limit: int = DEFAULT_LIMIT
    ) -> list[EccnSuggestion]:
        own = terms(description)
        if not own:
            return []
        hs_terms, hs_groups = hs_hint(hs_code)
        weights = _query_weights(own, expansions(description), hs_terms)
        known = {term: weight * self._idf[term] for term, weight in weights.items() if term in self._idf}
        # The ceiling counts the description's words no control-list text uses (brand names, but
        # also "shirt", "chair") at half the rarest term's weight: the more of a description the
        # lists do not speak of, the lower every score, and the sooner EAR99 ranks first.
        unknown = sum(1 for term in set(own) if term not in self._idf)
        ceiling = (sum(known.values()) + UNKNOWN_TERM_SHARE * self._max_idf * unknown) * (K1 + 1)
        scores: dict[int, float] = {}
        for term, weighted_idf in known.items():
            for index, count in self._postings[term]:
                scores[index] = scores.get(index, 0.0) + weighted_idf * count * (K1 + 1) / (
                    count + self._norm[index]
                )
        best = self._best_per_entry(scores, product_group_hint(description), hs_groups, is_civil(description))
        ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))
        return self._ranked(ranked, ceiling, limit)

    def _best_per_entry(
        self, scores: dict[int, float], group: str | None, hs_groups: tuple[str, ...], civil: bool
    ) -> dict[str, tuple[float, int]]:
        """Each entry's best text (score, index), its score moved by the product-group, HS and
        civil-use hints."""
        best: dict[str, tuple[float, int]] = {}
        for index, score in scores.items():
            entry = self._texts[index].entry
            if entry[1] not in (group or "ABC"):
                score *= OTHER_GROUP_FACTOR
            if hs_groups and entry.startswith(hs_groups):
                score *= HS_GROUP_FACTOR
            if civil and entry[2] == "9":
                score *= CIVIL_FACTOR
            found = best.get(entry)
            # The higher score; among equals the shorter code (the entry before its paragraphs).
            if (
                found is None
                or score > found[0]
                or (score == found[0] and len(self._texts[index].eccn) < len(self._texts[found[1]].eccn))
            ):
                best[entry] = (score, index)
        return best

    def _ranked(
        self, ranked: list[tuple[str, tuple[float, int]]], ceiling: float, limit: int
    ) -> list[EccnSuggestion]:
        """The first `limit` entries as suggestions, scores normalised by `ceiling`, with EAR99 placed
        where its fixed score ranks."""
        suggestions: list[EccnSuggestion] = []
        ear99_placed = False
        for entry, (score, index) in ranked:
            normalised = min(round(score / ceiling, 3), 1.0) if ceiling else 0.0
            if not ear99_placed and normalised < EAR99_SCORE:
                suggestions.append(_ear99())
                ear99_placed = True
            if len(suggestions) == limit:
                break
            text = self._texts[index]
            suggestions.append(
                EccnSuggestion(
                    eccn=text.eccn,
                    score=normalised,
                    heading=self._headings[entry],
                    matched_text=_clip(text.matched_text),
                    source=text.source,
                )
            )
            if len(suggestions) == limit:
                break
        if not ear99_placed and len(suggestions) < limit:
            suggestions.append(_ear99())
        return suggestions


def _query_weights(own: Sequence[str], expanded: Iterable[str], hs_terms: Iterable[str]) -> dict[str, float]:
    """The description's own words count fully; the vocabulary's expansions and the HS heading's
    words less, and only where the description does not already say them."""
    weights: dict[str, float] = {}
    for term in own:
        weights[term] = 1.0
    for term in expanded:
        weights.setdefault(term, EXPANSION_WEIGHT)
    for term in hs_terms:
        weights.setdefault(term, HS_WEIGHT)
    return weights


def _ear99() -> EccnSuggestion:
    return EccnSuggestion(
        eccn=EAR99,
        score=EAR99_SCORE,
        heading=EAR99_HEADING,
        matched_text="No CCL text matches the description better than this score: the item may be "
        "EAR99 (subject to the EAR, not on the Commerce Control List).",
        source="none",
    )


def _reserved(text: str) -> bool:
    plain = text.strip().lower()
    return plain.endswith("[reserved]") or plain in ("not used;", "not used", "[reserved];")


def _clip(text: str) -> str:
    return text if len(text) <= MATCHED_TEXT_LIMIT else text[: MATCHED_TEXT_LIMIT - 1] + "…"


def suggestion_entry(suggestion: EccnSuggestion) -> str:
    """The base ECCN of a suggestion ("3A001" for "3A001.a.7", "EAR99")."""
    parsed = parse_eccn(suggestion.eccn)
    return parsed.base if isinstance(parsed, ParsedEccn) else suggestion.eccn
