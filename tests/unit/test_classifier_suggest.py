"""Suggestions for unclassified lines: ranked CCL and EU Annex I texts, explained, deterministic,
EAR99 when nothing fits; and the vocabulary that reads descriptions and control texts alike."""

from __future__ import annotations

import pytest

from services.classifier.suggest import DEFAULT_LIMIT, EAR99_SCORE, suggestion_entry
from services.classifier.vocabulary import expansions, hs_hint, product_group_hint, terms
from tests import classifier_support as support


def entries(description: str, hs_code: str | None = None) -> list[str]:
    return [suggestion_entry(s) for s in support.suggestions().suggest(description, hs_code)]


def test_category_2_entry_is_ranked_on_eu_annex_text_where_the_ccl_copy_has_no_items() -> None:
    # The reference CCL has item paragraphs for categories 1, 3, 4, 5 only; 2B230's paragraph
    # text comes from the EU entry with the same number, and says so.
    first = support.suggestions().suggest("Pressure transducer, 0-100 Pa absolute")[0]
    assert suggestion_entry(first) == "2B230" and first.eccn.startswith("2B230.")
    assert first.source == "eu_annex_i"
    assert "kPa" in first.matched_text
    assert first.heading.startswith("All types of")  # the heading is always the CCL's


def test_paragraph_that_matched_is_suggested_with_its_code_and_text() -> None:
    first = support.suggestions().suggest("Field programmable logic device")[0]
    assert (first.eccn, first.source) == ("3A001.a.7", "ccl")
    assert "Field programmable logic devices" in first.matched_text


def test_each_entry_is_suggested_once_best_first_at_most_five() -> None:
    found = support.suggestions().suggest("Uncooled thermal imaging camera, 640x512, 9 Hz")
    assert len(found) == DEFAULT_LIMIT
    names = [suggestion_entry(s) for s in found]
    assert len(set(names)) == len(names)
    assert names[0] == "6A003" and "6A993" in names
    scores = [s.score for s in found]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


def test_suggestions_are_deterministic() -> None:
    first = support.suggestions().suggest("Uncooled thermal imaging camera, 640x512", "8525.89")
    assert first == support.suggestions().suggest("Uncooled thermal imaging camera, 640x512", "8525.89")


def test_description_the_lists_do_not_describe_gets_ear99() -> None:
    [only] = support.suggestions().suggest("Cotton t-shirt, size M")
    assert (only.eccn, only.score, only.source) == ("EAR99", EAR99_SCORE, "none")
    assert "734.3(c)" in only.heading


def test_ear99_ranks_below_entries_that_match_well() -> None:
    found = entries("Field programmable logic device")
    assert "EAR99" not in found[:2]


def test_blank_description_gets_no_suggestion() -> None:
    assert support.suggestions().suggest("  ") == []
    assert support.suggestions().suggest("--- 123 ---") == []


def test_software_descriptions_rank_product_group_d_and_hardware_group_a() -> None:
    assert entries("Web browser software")[0] == "5D992"
    assert entries("Smartphone, 128 GB")[0] == "5A992"


def test_encrypting_commodity_shows_both_the_mass_market_and_the_controlled_entry() -> None:
    found = entries("hardware-encrypted USB flash drive")
    assert {"5A992", "5A002"} <= set(found)


def test_hs_heading_moves_its_usual_ccl_categories_up() -> None:
    # "Sensor assembly" alone says little; HS 8525 (cameras) and 9014 (navigation) say what it is.
    assert entries("Sensor assembly", "8525.89")[0] == "6A003"
    assert entries("Sensor assembly", "9014.20")[0].startswith("7A")
    assert entries("Sensor assembly")[0] != "6A003"


def test_eu_greek_mu_and_micro_sign_and_spellings_read_the_same() -> None:
    assert terms("0,9 μm") == terms("0.9 µm") == terms("0.9 um") == ["um"]
    assert terms("carbon fibre centre aluminium") == terms("carbon fiber center aluminum")
    assert terms("Analogue-to-digital") == terms("analog to digital")


@pytest.mark.parametrize(
    ("description", "ccl_words"),
    [
        ("Virtex FPGA", "field programmable logic devices"),
        ("14-bit ADC", "analog to digital converters"),
        ("GNSS receiver", "global navigation satellite systems"),
        ("5-axis CNC machining centre", "numerically controlled machine tools"),
        ("Work-class ROV", "unmanned tethered submersible vehicles"),
        ("Wi-Fi 6 router", "mass market encryption commodities"),
    ],
)
def test_abbreviations_and_product_words_expand_to_the_ccl_words(description: str, ccl_words: str) -> None:
    assert set(terms(ccl_words)) <= set(expansions(description))


def test_hs_hint_reads_the_heading_then_the_chapter() -> None:
    assert hs_hint("8542.39") == (terms("integrated circuits"), ("3A",))
    assert hs_hint("2837.11")[1] == ("1C",)  # chapter 28: chemicals
    assert hs_hint("6109.10") == ([], ())
    assert hs_hint(None) == ([], ())


def test_product_group_hint_reads_software_and_technology_words() -> None:
    assert product_group_hint("Windows 11 operating system licence") == "D"
    assert product_group_hint("Technology for the production of FPGAs") == "E"
    assert product_group_hint("Oscilloscope, 1 GHz") is None
