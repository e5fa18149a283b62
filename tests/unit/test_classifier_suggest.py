"""Suggestions for unclassified lines: ranked, explained, deterministic, and silent when nothing fits."""

from __future__ import annotations

from tests import classifier_support as support


def test_pressure_transducer_description_suggests_2b230_first() -> None:
    suggestions = support.suggestions().suggest("Pressure transducer, 0-100 Pa absolute")
    assert suggestions[0].eccn == "2B230"
    assert "pressure transducers" in suggestions[0].matched_text
    assert suggestions[0].heading.startswith("All types of")


def test_paragraph_text_is_suggested_with_its_paragraph_code() -> None:
    suggestions = support.suggestions().suggest("Field programmable logic device")
    assert "3A001.a.7" in [s.eccn for s in suggestions]


def test_suggestions_are_deterministic_and_bounded() -> None:
    first = support.suggestions().suggest("Uncooled thermal imaging camera, 640x512", limit=3)
    again = support.suggestions().suggest("Uncooled thermal imaging camera, 640x512", limit=3)
    assert first == again and len(first) <= 3
    assert all(0.25 <= s.score <= 1.0 for s in first)


def test_no_suggestion_for_a_description_without_ccl_words() -> None:
    assert support.suggestions().suggest("Cotton t-shirt, size M") == []
    assert support.suggestions().suggest("  ") == []
