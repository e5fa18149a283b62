"""Screening core: normalisation and scoring on plain values, then matching on the real lists
(OFAC SDN 2023-12-28 and the trade.gov CSL 2026-07-31, loaded once per session)."""

from __future__ import annotations

import dataclasses

import pytest

from services.screening.domain import (
    ListCatalog,
    NameQuery,
    Screener,
    ScreeningPolicy,
    TokenIndex,
    apply_country,
    normalise_name,
    score_names,
    token_similarity,
)
from tests.screening_support import loaded_screening

# --- normalisation -----------------------------------------------------------------------------


def test_legal_forms_neither_create_nor_hide_a_match() -> None:
    assert (
        normalise_name("ROSOBORONEXPORT OAO") == normalise_name("Rosoboronexport JSC") == ("rosoboronexport",)
    )
    assert normalise_name("Muster Maschinenbau GmbH") == ("muster", "maschinenbau")
    assert normalise_name("Limited Liability Company Timechips") == ("timechips",)
    assert normalise_name("PUBLIC JOINT STOCK COMPANY TUTAEV MOTOR PLANT") == ("tutaev", "motor", "plant")
    assert normalise_name("OBSHCHESTVO S OGRANICHENNOI OTVETSTVENNOSTYU SFT") == ("sft",)


def test_a_typo_in_a_long_legal_form_is_still_recognised_as_the_form() -> None:
    assert normalise_name("LIMITED LIABILITY COMPAYY TIMECHIPS") == ("timechips",)


def test_a_name_made_only_of_legal_forms_keeps_its_tokens() -> None:
    assert normalise_name("The Company") == ("the", "company")


def test_last_first_is_reordered_and_titles_dropped() -> None:
    assert normalise_name("AL ZAWAHIRI, Dr. Ayman", entry_type="individual") == ("ayman", "al", "zawahiri")
    assert normalise_name("YASSIN, Sheik Ahmed Ismail") == ("ahmed", "ismail", "yassin")


def test_a_comma_before_a_legal_form_is_not_a_given_name() -> None:
    assert normalise_name("Siemens, AG") == ("siemens",)
    assert normalise_name("ANGLO-CARIBBEAN CO., LTD.", entry_type="entity") == ("anglo", "caribbean")


def test_cyrillic_and_diacritics_are_transliterated() -> None:
    assert normalise_name("ООО Ромашка") == normalise_name("OOO Romashka") == ("romashka",)
    assert normalise_name("Müller Präzisionstechnik GmbH") == ("muller", "prazisionstechnik")


def test_initials_written_with_dots_become_one_token() -> None:
    assert normalise_name("U.S.A. Trading") == normalise_name("USA Trading") == ("usa", "trading")


# --- scoring -----------------------------------------------------------------------------------


def test_identical_token_sets_score_exactly_one_in_any_order() -> None:
    assert score_names(("ayman", "al", "zawahiri"), ("al", "zawahiri", "ayman"), {}).score == 1.0


def test_one_typo_keeps_jaro_winkler_but_a_shared_prefix_is_not_a_typo() -> None:
    assert token_similarity("hazprom", "gazprom") > 0.9
    assert token_similarity("rystrobank", "bystrobank") == pytest.approx(0.9)
    assert token_similarity("siemens", "siemensstadt") < 0.8
    assert token_similarity("acme", "amen") < 0.8


def test_words_split_differently_still_align() -> None:
    scored = score_names(("rosoboron", "export"), ("rosoboronexport",), {})
    assert scored.score == 1.0
    assert scored.pairs == (("rosoboron export", "rosoboronexport", 1.0),)


def test_unmatched_tokens_lower_the_score_and_are_reported() -> None:
    scored = score_names(("dena", "tankers"), ("dena", "tankers", "shipping"), {})
    assert scored.score < 0.86
    assert scored.unmatched_listed == ("shipping",)


def test_country_moves_only_scores_already_at_review_and_never_an_exact_name() -> None:
    assert apply_country(0.80, True, 0.86) == 0.80  # a weak name stays weak
    assert apply_country(0.90, True, 0.86) == 0.92
    assert apply_country(0.90, False, 0.86) == 0.88
    assert apply_country(0.98, True, 0.86) == 0.99  # only an exact name reaches 1.0
    assert apply_country(1.0, False, 0.86) == 1.0


def test_policy_with_inverted_thresholds_is_refused() -> None:
    section = {
        "review_threshold": 0.96,
        "block_threshold": 0.9,
        "max_matches_per_party": 5,
        "list_effects": {},
    }
    with pytest.raises(ValueError, match=r"review_threshold=0\.96 and block_threshold=0\.9"):
        ScreeningPolicy.from_section("test", section)


def test_policy_with_an_unknown_list_effect_is_refused() -> None:
    section = {
        "review_threshold": 0.86,
        "block_threshold": 0.95,
        "max_matches_per_party": 5,
        "list_effects": {"EL": {"effect": "deny"}},
    }
    with pytest.raises(ValueError, match=r"list_effects.EL.effect='deny'"):
        ScreeningPolicy.from_section("test", section)


# --- on the real lists -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded() -> tuple[ListCatalog, Screener]:
    return loaded_screening()


@pytest.fixture(scope="module")
def screener(loaded: tuple[ListCatalog, Screener]) -> Screener:
    return loaded[1]


@pytest.fixture(scope="module")
def policy(screener: Screener) -> ScreeningPolicy:
    return screener.policy


def test_buyer_named_exactly_as_an_sdn_entity_scores_at_least_block(
    screener: Screener, policy: ScreeningPolicy
) -> None:
    [match] = screener.screen_name("DENA TANKERS FZE", "AE")
    assert (match.list_id, match.entry_id, match.effect) == ("SDN", "15145", "block")
    assert match.score == 1.0 >= policy.block_threshold
    assert match.evidence.programs == ["IRAN"]
    assert match.evidence.country_agreement is True


def test_sdn_carried_by_two_sources_is_reported_once_per_entry(loaded: tuple[ListCatalog, Screener]) -> None:
    catalog, screener = loaded
    matches = screener.screen_name("MAHAN AIR", "IR")
    assert [(m.list_id, m.entry_id) for m in matches] == [("SDN", "12927")]
    sources = {e.source_id for e in catalog.entries[("SDN", "12927")]}
    assert len(sources) == 2
    sdn_versions = {s.version for s in screener.screened_lists() if s.list_id == "SDN"}
    assert len(sdn_versions) == 2  # both sources are screened and reported
    csl = next(s for s in screener.screened_lists() if s.list_id == "SDN" and s.published == "2026-07-31")
    assert matches[0].list_version == csl.version  # a tie goes to the newer publication


@pytest.mark.parametrize(
    ("typo", "list_id", "entry_id"),
    [
        ("DENA TANKRES FZE", "SDN", "15145"),
        ("Chengdu Latest Electronic Technology Company", "EL", "x-2938"),
        ("Dandong Nondestructive Electronis", "UVL", "x-25719"),
    ],
)
def test_one_letter_typo_of_a_listed_name_is_still_at_least_review(
    screener: Screener, policy: ScreeningPolicy, typo: str, list_id: str, entry_id: str
) -> None:
    matches = screener.screen_name(typo)
    found = next(m for m in matches if (m.list_id, m.entry_id) == (list_id, entry_id))
    assert policy.review_threshold <= found.score < 1.0


@pytest.mark.parametrize(
    "innocent",
    [
        "Muster Maschinenbau GmbH",
        "Siemens AG",
        "Bosch Rexroth AG",
        "Tokyo Electron Limited",
        "Acme Industrial Supply LLC",
        "Thales SA",
        "Samsung Electronics Co., Ltd.",
        "Texas Instruments Incorporated",
    ],
)
def test_common_innocent_company_names_produce_no_hit(screener: Screener, innocent: str) -> None:
    assert screener.screen_name(innocent) == []


def test_entity_list_company_carries_the_licence_effect(screener: Screener, policy: ScreeningPolicy) -> None:
    [match] = screener.screen_name("Chengdu Latest Electronics Technology Co., Ltd.", "CN")
    assert (match.list_id, match.entry_id, match.effect) == ("EL", "x-2938", "licence")
    assert match.score >= policy.block_threshold


def test_unverified_list_name_carries_the_review_effect(screener: Screener) -> None:
    [match] = screener.screen_name("Dandong Nondestructive Electronics", "CN")
    assert (match.list_id, match.effect, match.score) == ("UVL", "review", 1.0)


def test_denied_persons_list_name_blocks(screener: Screener) -> None:
    [match] = screener.screen_name("PPC Computer Handles GmbH", "DE")
    assert (match.list_id, match.entry_id, match.effect) == ("DPL", "x-105", "block")


def test_cyrillic_spelling_of_a_listed_name_is_screened(screener: Screener) -> None:
    matches = screener.screen_name("ДЕНА ТАНКЕРС", "AE")
    assert [(m.list_id, m.entry_id) for m in matches] == [("SDN", "15145")]


def test_match_evidence_shows_aligned_tokens_and_country(screener: Screener) -> None:
    [match] = screener.screen_name("DENA TANKRES FZE", "AE")
    evidence = match.evidence
    assert [(p.query, p.listed) for p in evidence.token_pairs] == [("dena", "dena"), ("tankres", "tankers")]
    assert evidence.token_pairs[1].similarity < 1.0
    assert (evidence.party_country, evidence.entry_countries, evidence.country_agreement) == (
        "AE",
        ["AE"],
        True,
    )
    assert evidence.entry_type == "entity"


def test_another_country_never_lowers_an_exact_name(screener: Screener) -> None:
    [match] = screener.screen_name("Mahan Air", "DE")
    assert match.score == 1.0
    assert match.evidence.country_agreement is False


def test_entry_type_filter_excludes_entries_of_another_type(screener: Screener) -> None:
    assert screener.screen_name("MAHAN AIR", entry_type="individual") == []
    assert screener.screen_name("MAHAN AIR", entry_type="entity") != []


def test_matches_are_capped_best_first(screener: Screener) -> None:
    matches = screener.screen_name("SHAHID HEMMAT INDUSTRIAL GROUP", "IR")
    assert len(matches) > 1
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    capped = Screener(
        screener.matcher, dataclasses.replace(screener.policy, max_matches_per_party=1), screener.lists
    ).screen_name("SHAHID HEMMAT INDUSTRIAL GROUP", "IR")
    assert capped == matches[:1]


def test_candidate_retrieval_touches_a_small_part_of_the_index(screener: Screener) -> None:
    index = screener.matcher
    assert isinstance(index, TokenIndex)
    assert len(index.names) > 60_000
    assert 0 < len(index.candidates(NameQuery.of("DENA TANKRES FZE"))) <= index.MAX_CANDIDATES
