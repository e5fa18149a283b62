"""Screening core: normalisation, token similarity and name scoring on plain values, then the
screener on the real lists (every configured source, loaded once per session)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from services.screening.calibration import (
    RANK_HORIZON,
    Calibration,
    MatchFacts,
    calibrated_score,
    list_commonness,
    rank_commonness,
    signals,
)
from services.screening.domain import (
    ListCatalog,
    NameQuery,
    Screener,
    ScreeningPolicy,
    TokenIndex,
    analyse_name,
    normalise_name,
    score_names,
    token_similarity,
)
from services.screening.scoring import address_agreement, similar_tokens
from tests.screening_support import loaded_screening

# --- normalisation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("ROSOBORONEXPORT OAO", "Rosoboronexport JSC"),
        ("ООО Ромашка", "Romashka LLC"),
        ("Obshchestvo s ogranichennoi otvetstvennostyu Romashka", "OOO ROMASHKA"),
        ("Siemens Aktiengesellschaft", "Siemens AG"),
        ("Samsung Electronics Co., Ltd.", "Samsung Electronics Company Limited"),
        ("Comercializadora Tolteca S.A. de C.V.", "Comercializadora Tolteca"),
        ("Çetin Bilir A.Ş.", "CETIN BILIR"),
        ("Pune Aerotech Machining Pvt. Ltd.", "Pune Aerotech Machining Private Limited"),
        ("Dena Tankers Free Zone Establishment", "DENA TANKERS FZE"),
        ("PUBLIC JOINT STOCK COMPANY TUTAEV MOTOR PLANT", "Tutaev Motor Plant PJSC"),
    ],
)
def test_legal_forms_in_any_language_leave_the_same_identifying_tokens(one: str, other: str) -> None:
    assert analyse_name(one).tokens == analyse_name(other).tokens


def test_legal_forms_are_kept_apart_in_canonical_form() -> None:
    assert analyse_name("ООО Ромашка").forms == ("llc",)
    assert analyse_name("ROSOBORONEXPORT OAO").forms == ("jsc",)
    assert analyse_name("Krebs GmbH & Co. KG").tokens == ("krebs",)


def test_a_typo_in_a_legal_form_is_still_the_form() -> None:
    assert analyse_name("LIMITED LIABILITY COMPAYY TIMECHIPS").tokens == ("timechips",)
    assert analyse_name("JOINT STOKC COMPANY UNITED").tokens == ("united",)
    assert analyse_name("OSJC KUYBYSHEV REFINERY").tokens == ("kuybyshev", "refinery")


def test_a_slip_of_any_kind_in_an_abbreviation_ending_the_name_is_still_the_form() -> None:
    assert analyse_name("ROCHEM SERVICE GSBH") == analyse_name("ROCHEM SERVICE GMBH")
    assert analyse_name("VEB LEASING OJS").tokens == ("veb", "leasing")
    assert (
        analyse_name("WE FREIGHT INVESTMENT FZCH").forms == analyse_name("WE FREIGHT INVESTMENT FZCO").forms
    )
    # A name the world table knows is a name ("Ali Baba" is not a slip for BVBA); inside a name, or
    # alone, a word is the name's own.
    assert analyse_name("Ali Baba").tokens == ("ali", "baba")
    assert analyse_name("GSBH ROCHEM SERVICE").tokens == ("gsbh", "rochem", "service")
    assert analyse_name("GSBH").tokens == ("gsbh",)


def test_a_legal_form_glued_to_the_name_is_split_off() -> None:
    assert analyse_name("MERCURYLLC").tokens == ("mercury",)
    assert analyse_name("JSCNIIGRAFIT").tokens == ("niigrafit",)
    assert analyse_name("Unlimited Accompany").tokens == ("unlimited", "accompany")


def test_a_short_ambiguous_form_inside_a_name_is_a_word() -> None:
    assert analyse_name("Alpha AG Beta").tokens == ("alpha", "ag", "beta")
    assert analyse_name("Alpha Beta AG").tokens == ("alpha", "beta")


def test_a_name_made_only_of_forms_and_filler_words_keeps_its_tokens() -> None:
    assert analyse_name("The Company").tokens == ("company",)


def test_last_first_is_reordered_and_titles_dropped() -> None:
    assert normalise_name("AL ZAWAHIRI, Dr. Ayman", entry_type="individual") == ("ayman", "al", "zawahiri")
    assert normalise_name("YASSIN, Sheik Ahmed Ismail") == ("ahmed", "ismail", "yassin")
    assert normalise_name("Siemens, AG") == ("siemens",)


def test_cyrillic_is_romanised_as_the_us_lists_spell_it() -> None:
    assert normalise_name("Евгений Ёлкин") == ("yevgeniy", "yolkin")
    assert normalise_name("Сергій Закусило") == ("sergiy", "zakusilo")


def test_greek_is_romanised_the_modern_way() -> None:
    assert normalise_name("Δημήτρης Παπαδόπουλος") == ("dimitris", "papadopoulos")
    assert normalise_name("Τζαμπούρ") == ("jabour",)


def test_arabic_script_keeps_its_consonants_and_sets_the_article_apart() -> None:
    analysed = analyse_name("محمد الحارث")
    assert normalise_name("محمد الحارث") == ("mhmd", "al", "harth")
    assert all(t.startswith("~") for t in analysed.tokens if t != "al")


def test_chinese_characters_become_syllables_that_match_only_exactly() -> None:
    assert normalise_name("王斌") == ("wang", "bin")
    assert token_similarity("^wang", "wang") == 1.0
    assert token_similarity("^wang", "yang") == 0.0


def test_diacritics_dotted_initials_and_the_turkish_capital_i() -> None:
    assert normalise_name("Müller Präzisionstechnik GmbH") == ("muller", "prazisionstechnik")
    assert normalise_name("U.S.A. Trading") == normalise_name("USA Trading") == ("usa", "trading")
    assert normalise_name("İrşad Electronics") == ("irsad", "electronics")


# --- token similarity --------------------------------------------------------------------------


def test_one_typo_keeps_a_long_word_but_a_shared_prefix_is_not_a_typo() -> None:
    assert token_similarity("hazprom", "gazprom") > 0.9
    assert token_similarity("rystrobank", "bystrobank") == pytest.approx(0.9)
    assert token_similarity("siemens", "siemensstadt") < 0.8
    assert token_similarity("acme", "amen") < 0.8


def test_in_short_words_one_slip_is_the_least_that_still_aligns() -> None:
    assert token_similarity("luis", "lusi") == pytest.approx(0.8)
    assert token_similarity("peng", "pena") == pytest.approx(0.8)
    assert token_similarity("kim", "gim") == pytest.approx(0.8)  # one sound, two romanisations
    # The first letter changed for another sound makes another name.
    assert token_similarity("peng", "teng") < 0.8
    assert token_similarity("ting", "ming") < 0.8
    assert token_similarity("jin", "xing") < 0.8


@pytest.mark.parametrize(
    ("one", "other"),
    [("yevgeniy", "evgenii"), ("muhammad", "mohammed"), ("youssef", "yusuf"), ("tupoleff", "tupolev")],
)
def test_romanisations_of_one_name_align_but_never_as_equal(one: str, other: str) -> None:
    assert 0.85 <= token_similarity(one, other) < 1.0


def test_two_names_alike_only_in_their_consonants_do_not_align() -> None:
    assert token_similarity("hussein", "hassan") < 0.8
    assert token_similarity("neto", "nata") < 0.8


def test_arabic_script_aligns_through_its_skeleton_below_certainty() -> None:
    assert token_similarity("~mhmd", "muhammad") == pytest.approx(0.92)
    assert token_similarity("~mhmd", "mahmoud") == pytest.approx(0.92)
    assert token_similarity("~ysf", "yusuf") == pytest.approx(0.92)
    assert token_similarity("~mhmd", "ahmad") == 0.0


def test_numbers_match_only_exactly() -> None:
    assert token_similarity("7876", "7877") == 0.0


def test_the_batch_similarity_computes_the_same_figures() -> None:
    words = ["muhammad", "mohammed", "youssef", "yusuf", "tankers", "tankres", "luis", "lusi", "hussein",
             "hassan", "siemens", "siemensstadt", "aleksandr", "alexander", "rystrobank", "bystrobank"]  # fmt: skip
    for query in words:
        batch = similar_tokens(query, words)
        expected = {w: s for w in words if (s := token_similarity(query, w)) >= 0.8}
        assert batch == pytest.approx(expected)


# --- name scoring ------------------------------------------------------------------------------


def test_identical_token_sets_score_exactly_one_in_any_order() -> None:
    assert score_names(("ayman", "al", "zawahiri"), ("al", "zawahiri", "ayman"), {}).score == 1.0


def test_a_different_legal_form_neither_makes_nor_breaks_a_match() -> None:
    one, other = analyse_name("Dena Tankers LLC").tokens, analyse_name("DENA TANKERS FZE").tokens
    assert score_names(one, other, {}).score == 1.0


def test_words_split_or_joined_differently_still_align() -> None:
    assert score_names(("rosoboron", "export"), ("rosoboronexport",), {}).pairs == (
        ("rosoboron export", "rosoboronexport", 1.0),
    )
    scored = score_names(("andreyigorevich", "melnichenko"), ("andrey", "igorevich", "melnichenko"), {})
    assert scored.score == 1.0
    assert scored.pairs[0] == ("andreyigorevich", "andrey igorevich", 1.0)


def test_a_word_the_order_adds_costs_more_than_a_word_it_leaves_out() -> None:
    shortened = score_names(("dena", "tankers"), ("dena", "tankers", "shipping"), {})
    lengthened = score_names(("dena", "tankers", "shipping"), ("dena", "tankers"), {})
    assert lengthened.score < shortened.score < 1.0
    assert shortened.unmatched_listed == ("shipping",)
    assert lengthened.unmatched_query == ("shipping",)


def test_one_word_found_in_a_longer_listed_name_is_weaker_evidence_than_two() -> None:
    weights = {"wagner": 1.0, "group": 0.4, "tankers": 1.0, "dena": 1.0}
    one = score_names(("wagner",), ("wagner", "group"), weights).score
    two = score_names(("dena", "tankers"), ("dena", "tankers", "group"), weights).score
    assert one < two - 0.05


def test_rare_words_weigh_more_than_frequent_ones() -> None:
    weights = {"trading": 0.34, "rosoboronexport": 1.0}
    assert (
        score_names(("rosoboronexport",), ("rosoboronexport", "trading"), weights).score
        > score_names(("trading",), ("rosoboronexport", "trading"), weights).score
    )


CALIBRATION = Calibration(
    "test-1",
    {
        "offset": 0.02,
        "country_agrees": 0.03,
        "country_differs": -0.05,
        "vessel_conflict": -0.2,
        "world_common": -0.1,
    },
    lift=0.04,
)


def values(**given: float) -> dict[str, float]:
    return {"offset": 1.0, **given}


def test_the_calibrated_score_is_the_name_score_plus_each_signals_contribution() -> None:
    score, contributions = calibrated_score(
        0.9, values(country_agrees=1.0, world_common=0.5), CALIBRATION, 0.84
    )
    assert contributions == [
        ("offset", 1.0, 0.02),
        ("world_common", 0.5, -0.05),
        ("country_agrees", 1.0, 0.03),
    ]
    assert score == pytest.approx(0.9 + 0.02 - 0.05 + 0.03)
    assert calibrated_score(0.9, values(), Calibration(), 0.84) == (0.9, [])  # no calibration: the name score


def test_evidence_lifts_a_name_only_from_just_under_the_review_threshold() -> None:
    near, _ = calibrated_score(0.82, values(country_agrees=1.0), CALIBRATION, 0.84)
    assert near == pytest.approx(0.87)  # 0.04 under review or less: the evidence may lift it
    weak, _ = calibrated_score(0.79, values(country_agrees=1.0), CALIBRATION, 0.84)
    assert weak == 0.79  # further under: only ever lowered
    assert calibrated_score(0.79, values(country_differs=1.0), CALIBRATION, 0.84)[0] == pytest.approx(0.76)


def test_only_the_same_name_scores_one_and_it_stays_at_review_unless_its_type_conflicts() -> None:
    assert calibrated_score(0.98, values(country_agrees=1.0), CALIBRATION, 0.84)[0] == 0.99
    assert calibrated_score(1.0, values(country_agrees=1.0), CALIBRATION, 0.84)[0] == 1.0
    # A country the entry is not tied to, a common name: for the reviewer, never below review.
    assert calibrated_score(1.0, values(country_differs=1.0, world_common=1.0), CALIBRATION, 0.99)[0] == 0.99
    # "AMBER Inc." is not the vessel AMBER: a type conflict may take even the same name below it.
    strong = Calibration("test-2", {"vessel_conflict": -0.2})
    assert calibrated_score(1.0, values(vessel_conflict=1.0), strong, 0.84)[0] == 0.8


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"version": "x", "coefficients": {"colour": 0.1}}, "coefficients.colour is not a signal"),
        ({"version": "x", "coefficients": {"slip": "high"}}, "coefficients.slip='high' must be a number"),
        ({"version": "x", "coefficients": {"slip": 3.0}}, "coefficients.slip=3.0 must be between -1 and 1"),
        ({"version": "x", "coefficients": {}, "lift": 0.5}, "calibration.lift=0.5"),
        ({"version": "", "coefficients": {}}, "calibration.version=''"),
        ([1, 2], "screening.calibration must be an object"),
    ],
)
def test_a_bad_calibration_is_refused_naming_the_field_and_value(section: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Calibration.from_section("test", section)


def test_the_signals_of_a_match_read_the_alignment_and_the_evidence() -> None:
    facts = MatchFacts(
        0.9,
        (("julia", "julia", 1.0), ("morgn", "morgan", 0.9)),
        query_unexplained=0.1,
        listed_unexplained=0.2,
        country_agreement=False,
        type_conflict=False,
        vessel_conflict=False,
    )
    world = {"julia": 0.7, "morgan": 0.5}
    got = signals(facts, lambda w: world.get(w, 0.0), lambda w: 0.0, lambda w: w == "trading")
    assert got["world_common"] == 0.5  # the least common shared word decides
    assert got["one_word"] == 0.0
    assert got["slip"] == pytest.approx(0.1)
    assert got["common_slip"] == pytest.approx(0.05)
    # The party's side of the slipped pair counts as much as the listed one's: "Jingjing" is a
    # common name, whatever "Mingjing" is.
    near = dataclasses.replace(facts, pairs=(("wang", "wang", 1.0), ("jingjing", "mingjing", 0.875)))
    common = {"wang": 0.9, "jingjing": 0.6}
    assert signals(near, lambda w: common.get(w, 0.0), lambda w: 0.0, lambda w: False)[
        "common_slip"
    ] == pytest.approx(0.125 * 0.6)
    assert (got["country_agrees"], got["country_differs"]) == (0.0, 1.0)
    assert (got["query_unexplained"], got["listed_unexplained"]) == (0.1, 0.2)
    assert got["abjad"] == 0.0  # a party's name in Latin letters
    arabic = dataclasses.replace(facts, abjad=0.5)
    assert signals(arabic, lambda w: world.get(w, 0.0), lambda w: 0.0, lambda w: False)["abjad"] == 0.5
    one = dataclasses.replace(facts, pairs=(("julia", "julia", 1.0), ("trading", "trading", 1.0)))
    assert (
        signals(one, lambda w: world.get(w, 0.0), lambda w: 0.0, lambda w: w == "trading")["one_word"] == 1.0
    )


def test_the_distinct_signals_weigh_what_is_left_unmatched_by_its_rarity_on_the_lists() -> None:
    facts = MatchFacts(
        0.86,
        (("apex", "apex", 1.0),),
        query_unexplained=0.3,
        listed_unexplained=0.0,
        country_agreement=None,
        type_conflict=False,
        vessel_conflict=False,
        unmatched_query=("trading", "hossein", "wuhan"),
        unmatched_listed=("al",),
    )
    common = {"hossein": 0.9, "wuhan": 0.2}
    got = signals(facts, lambda w: 0.0, lambda w: common.get(w, 0.0), lambda w: w == "trading")
    assert got["query_distinct"] == pytest.approx(0.8)  # wuhan; trading is generic, hossein common
    assert got["listed_distinct"] == 0.0  # a particle is not informative
    added_common = dataclasses.replace(facts, unmatched_query=("trading", "hossein"))
    got = signals(added_common, lambda w: 0.0, lambda w: common.get(w, 0.0), lambda w: w == "trading")
    assert got["query_distinct"] == pytest.approx(0.1)
    unlisted = dataclasses.replace(facts, unmatched_query=("raycus",))
    assert (
        signals(unlisted, lambda w: 0.0, lambda w: common.get(w, 0.0), lambda w: False)["query_distinct"]
        == 1.0
    )


def test_whole_rare_reads_a_whole_listed_name_by_its_rarest_shared_word() -> None:
    facts = MatchFacts(
        0.85,
        (("ruschemtrade", "ruschemtrade", 1.0),),
        query_unexplained=0.37,
        listed_unexplained=0.0,
        country_agreement=None,
        type_conflict=False,
        vessel_conflict=False,
        unmatched_query=("petrovich",),
    )
    world = {"petrovich": 0.6, "wang": 0.9}
    got = signals(facts, lambda w: world.get(w, 0.0), lambda w: 0.1, lambda w: False)
    assert got["whole_rare"] == pytest.approx(0.9)
    # A common shared word says little; a listed word left out, that the name is not all held.
    common = dataclasses.replace(facts, pairs=(("wang", "wang", 1.0),))
    assert signals(common, lambda w: world.get(w, 0.0), lambda w: 0.1, lambda w: False)["whole_rare"] == (
        pytest.approx(0.1)
    )
    part = dataclasses.replace(facts, listed_unexplained=0.3, unmatched_listed=("chemical",))
    assert signals(part, lambda w: world.get(w, 0.0), lambda w: 0.1, lambda w: False)["whole_rare"] == 0.0


def test_short_shared_reads_an_acronym_shared_beside_more_words() -> None:
    facts = MatchFacts(
        0.9,
        (("tcm", "tcm", 1.0),),
        query_unexplained=0.1,
        listed_unexplained=0.0,
        country_agreement=None,
        type_conflict=False,
        vessel_conflict=False,
        unmatched_query=("group",),
    )
    assert signals(facts, lambda w: 0.0, lambda w: 0.0, lambda w: w == "group")["short_shared"] == 1.0
    alone = dataclasses.replace(facts, query_unexplained=0.0, unmatched_query=())
    assert signals(alone, lambda w: 0.0, lambda w: 0.0, lambda w: w == "group")["short_shared"] == 0.0
    longer = dataclasses.replace(facts, pairs=(("tcm", "tcm", 1.0), ("mariel", "mariel", 1.0)))
    assert signals(longer, lambda w: 0.0, lambda w: 0.0, lambda w: w == "group")["short_shared"] == 0.0


def test_world_commonness_falls_with_the_rank() -> None:
    assert rank_commonness(1) == 1.0
    assert rank_commonness(10) > rank_commonness(100) > rank_commonness(1000) > 0.0
    assert rank_commonness(RANK_HORIZON) == 0.0
    assert list_commonness(None) == 0.0 and list_commonness(1.0) == 0.0 and list_commonness(1 / 3) == 1.0


def test_an_address_agrees_when_it_names_a_place_the_entry_names() -> None:
    entry_addresses = ("Office 12, Jebel Ali Free Zone, Dubai, United Arab Emirates",)
    assert address_agreement("P.O. Box 3344, Dubai", entry_addresses) == (True, entry_addresses[0])
    assert address_agreement("Hauptstr. 1, Stuttgart", entry_addresses) == (False, entry_addresses[0])
    assert address_agreement("Hauptstr. 1", ()) is None


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
        "review_threshold": 0.84,
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


def test_buyer_named_exactly_as_an_sdn_entity_scores_one(screener: Screener, policy: ScreeningPolicy) -> None:
    [match] = screener.screen_name("DENA TANKERS FZE", "AE")
    assert (match.list_id, match.entry_id, match.effect) == ("SDN", "15145", "block")
    assert match.score == 1.0 >= policy.block_threshold
    assert match.evidence.programs == ["IRAN"]
    assert match.evidence.country_agreement is True


def test_sdn_carried_by_two_sources_is_reported_once_per_entry(loaded: tuple[ListCatalog, Screener]) -> None:
    catalog, screener = loaded
    matches = screener.screen_name("MAHAN AIR", "IR")
    assert [(m.list_id, m.entry_id) for m in matches] == [("SDN", "12927")]
    assert len({e.source_id for e in catalog.entries[("SDN", "12927")]}) == 2


@pytest.mark.parametrize(
    ("misspelled", "list_id", "entry_id"),
    [
        ("DENA TANKRES FZE", "SDN", "15145"),
        ("Chengdu Latest Electronic Technology Company", "EL", "x-2938"),
        ("Dandong Nondestructive Electronis", "UVL", "x-25719"),
        ("Evgenii Prigojine", "SDN", "21171"),
    ],
)
def test_a_misspelled_listed_name_is_still_at_least_review(
    screener: Screener, policy: ScreeningPolicy, misspelled: str, list_id: str, entry_id: str
) -> None:
    matches = screener.screen_name(misspelled)
    found = next(m for m in matches if (m.list_id, m.entry_id) == (list_id, entry_id))
    assert policy.review_threshold <= found.score < 1.0


def test_a_listed_name_written_in_other_words_is_the_same_name(screener: Screener) -> None:
    assert ("SDN", "18782", 1.0) in {
        (m.list_id, m.entry_id, m.score) for m in screener.screen_name("Rosoboron Export OAO")
    }


def test_one_listed_word_with_another_legal_form_is_no_hit(screener: Screener) -> None:
    assert screener.screen_name("Wagner AG") == []
    assert screener.screen_name("Wagner Group") != []


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
        "Northbridge Networks Ltd",
        "Prairie Grain Handling Inc.",
        "Kansai Precision Components K.K.",
        "Delta Marine Supplies B.V.",
        "Southern Cross Mining Pty Ltd",
        "Atelier Lumière SARL",
        "Horák",
        "Neto Lda",
        "Falcon Gulf Engineering LLC",  # not the vessel GULF FALCON: a company is no vessel
    ],
)
def test_innocent_company_names_produce_no_hit(screener: Screener, innocent: str) -> None:
    assert screener.screen_name(innocent) == []


def test_entity_list_company_carries_the_licence_effect(screener: Screener, policy: ScreeningPolicy) -> None:
    [match] = screener.screen_name("Chengdu Latest Electronics Technology Co., Ltd.", "CN")
    assert (match.list_id, match.entry_id, match.effect) == ("EL", "x-2938", "licence")
    assert match.score >= policy.block_threshold


def test_unverified_list_name_carries_the_review_effect(screener: Screener) -> None:
    [match] = screener.screen_name("Dandong Nondestructive Electronics", "CN")
    assert (match.list_id, match.effect, match.score) == ("UVL", "review", 1.0)


def test_denied_persons_list_name_blocks(screener: Screener) -> None:
    matches = screener.screen_name("PPC Computer Handles GmbH", "DE")
    assert matches and {(m.list_id, m.effect, m.score) for m in matches} == {("DPL", "block", 1.0)}


def test_cyrillic_and_chinese_spellings_of_listed_names_are_screened(screener: Screener) -> None:
    assert [(m.list_id, m.entry_id) for m in screener.screen_name("ДЕНА ТАНКЕРС", "AE")] == [("SDN", "15145")]
    assert ("SDN", "54492") in {(m.list_id, m.entry_id) for m in screener.screen_name("李英")}


def test_match_evidence_shows_aligned_tokens_forms_and_country(screener: Screener) -> None:
    [match] = screener.screen_name("DENA TANKRES LLC", "AE")
    evidence = match.evidence
    assert [(p.query, p.listed) for p in evidence.token_pairs] == [("dena", "dena"), ("tankres", "tankers")]
    assert evidence.token_pairs[1].similarity < 1.0
    assert evidence.party_legal_forms == ["llc"]
    assert (evidence.party_country, evidence.entry_countries, evidence.country_agreement) == (
        "AE",
        ["AE"],
        True,
    )
    assert evidence.entry_type == "entity"
    assert evidence.name_score is not None and evidence.name_score < match.score  # the country moved it


def test_another_country_lowers_an_exact_name_a_little_and_never_below_block(screener: Screener) -> None:
    [match] = screener.screen_name("Mahan Air", "DE")
    assert match.evidence.country_agreement is False
    assert match.evidence.name_score == 1.0
    assert screener.policy.block_threshold <= match.score < 1.0


def test_a_weak_alias_alone_is_a_potential_match_never_a_block(
    loaded: tuple[ListCatalog, Screener], policy: ScreeningPolicy
) -> None:
    catalog, screener = loaded
    weak = next(
        (e, alias)
        for entries in catalog.entries.values()
        for e in entries
        for alias in e.weak_aliases
        if len(normalise_name(alias)) >= 2
    )
    entry, alias = weak
    found = next(
        m for m in screener.screen_name(alias) if (m.list_id, m.entry_id) == (entry.list_id, entry.entry_id)
    )
    assert found.evidence.weak_alias is True
    assert policy.review_threshold <= found.score < policy.block_threshold


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
    assert len(index.names) > 90_000
    candidates = index.candidates(NameQuery.of("DENA TANKRES FZE"), 0.84)
    assert 0 < len(candidates) <= 10
