"""What the matcher reads through, beyond a plain Latin spelling: Greek and Arabic script, legal
forms and filler words written with the wrong spacing, titles with a slip, a party's common word
left over; and what it refuses to read into a name (a listed party word read as another listed
name, long vowels Arabic script writes but the listed name lacks)."""

from __future__ import annotations

import pytest

from services.screening.domain import Screener, ScreeningPolicy, TokenIndex, analyse_name, token_similarity
from services.screening.normalise import greek_key, skeleton, sounds
from services.screening.scoring import (
    COMMON_WORD_DISCOUNT,
    ONE_SLIP,
    UNMATCHED_QUERY_COST,
    strict_similarity,
    unmatched_query_cost,
)
from tests.screening_support import loaded_screening

# --- Greek script ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("greek", "latin"),
    [
        ("παντελεεβ", "panteleev"),  # ντ is "nt" inside a word, "d" in a foreign name
        ("βαλεντινοβιχ", "valentinovich"),  # χ for "ch"
        ("μοχαμμεδ", "mohammed"),  # χ for "h"
        ("σχακουρ", "shakur"),  # σχ for "sh"
        ("μπελοζεροβ", "belozerov"),  # μπ for "b"
        ("κατραντζι", "katranji"),  # ντζ for "nj"
    ],
)
def test_a_greek_token_keys_like_the_latin_name_greek_writes_so(greek: str, latin: str) -> None:
    [token] = analyse_name(greek).tokens
    assert token.startswith("=")
    assert greek_key(token) == greek_key(latin)
    assert 0.84 < token_similarity(token, latin) < 1.0  # another script is never certain


def test_greek_titles_and_forms_are_recognised() -> None:
    assert analyse_name("σχειχ αχμεδ ουμαρ").tokens == ("=akhmed", "=oumar")


def test_greek_keys_do_not_make_different_names_alike() -> None:
    [token] = analyse_name("παπαδοπουλος").tokens
    assert token_similarity(token, "papandreou") < 0.8


# --- Arabic script -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arabic", "latin"),
    [
        ("يسف", "yusuf"),
        ("ام", "umm"),  # a skeleton of one consonant
        ("مس", "musse"),  # written without its short vowels: the romanisation may be twice as long
        ("اويس", "aweys"),
        ("دمنك", "dominic"),  # c as ك
        ("بولوسكة", "pawlowska"),  # p as ب
        ("اده", "odeh"),  # a final ه is a vowel
        ("ابيدة", "ubaydah"),
    ],
)
def test_arabic_script_aligns_with_its_romanisation(arabic: str, latin: str) -> None:
    [token] = analyse_name(arabic).tokens
    assert skeleton(token) == skeleton(latin)
    assert token_similarity(token, latin) >= 0.9


@pytest.mark.parametrize(
    ("arabic", "latin"),
    [
        ("الأيوبي", "pouya"),  # al-Ayyubi: the same lone consonant, but ي و ي written and not heard
        ("راوي", "air"),
        ("حمیدی", "ahmad"),  # Hamidi is not Ahmad
        ("حسين", "hassan"),  # Husayn writes a ي Hassan lacks
        ("الحكير", "haucore"),  # the ي between k and r is not where Haucore has its vowel
    ],
)
def test_long_vowels_arabic_script_writes_must_be_heard_in_place(arabic: str, latin: str) -> None:
    token = analyse_name(arabic).tokens[-1]
    assert token_similarity(token, latin) == 0.0


def test_sounds_keep_long_vowels_in_place() -> None:
    assert sounds("~aywby") == sounds("ayoubi")
    assert sounds("haucore") == "hAWkWrY"


# --- spacing, titles ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "tokens"),
    [
        ("LIMITEDLIABILITY COMPANY ASTECLING", ("astecling",)),
        ("LIMITED LIA BILITY COMPANY TEK KOM", ("tek", "kom")),
        ("JOINT STOCK COMPANYMORDOV RADIOELECTRONIC", ("mordov", "radioelectronic")),
        ("OTKRYTOYE AKTSIONERNOYE OBSHCHESTVOBELARUSKALIY", ("belaruskaliy",)),
        ("OBSHCHESTVO SOGRANICHENNOI OTVETSTVENNOSTYU URALMASH", ("uralmash",)),
        ("AZUL VISTA SHIPPING CORPO RATION", ("azul", "vista", "shipping")),
        ("Stockholm Trading", ("stockholm", "trading")),  # no form in "Stockholm"
    ],
)
def test_legal_form_words_written_with_the_wrong_spacing(written: str, tokens: tuple[str, ...]) -> None:
    assert analyse_name(written).tokens == tokens


@pytest.mark.parametrize(
    ("written", "tokens"),
    [
        ("Sheih Abdulkadir MUMIN", ("abdulkadir", "mumin")),
        ("Schaykh Omar", ("omar",)),
        ("Hjai Basir Hawala", ("basir", "hawala")),
        ("Hadi Basir", ("hadi", "basir")),  # a name one letter from "Hadji" is a name
        ("Molla Nasreddin", ("molla", "nasreddin")),
    ],
)
def test_titles_with_a_slip_are_titles_and_names_near_them_are_names(
    written: str, tokens: tuple[str, ...]
) -> None:
    assert analyse_name(written).tokens == tokens


# --- scoring -----------------------------------------------------------------------------------


def test_a_left_over_party_word_costs_less_the_more_frequent_it_is_on_the_lists() -> None:
    rare, common = unmatched_query_cost("vladimir", 0.5, 1.0), unmatched_query_cost("vladimir", 0.5, 0.3)
    assert rare == pytest.approx(UNMATCHED_QUERY_COST * 0.5)
    assert common == pytest.approx(UNMATCHED_QUERY_COST * (1 - COMMON_WORD_DISCOUNT * 0.7) * 0.5)
    # A word the lists never hold costs as the rarest would, whatever listed word it resembles.
    assert unmatched_query_cost("hines", 0.28, None) == pytest.approx(UNMATCHED_QUERY_COST * 0.875)


def test_one_slip_in_a_single_word_of_six_letters_is_a_typo_unless_the_party_word_is_listed() -> None:
    assert strict_similarity("srteams", "streams", 0.9) == pytest.approx(6 / 7)
    assert strict_similarity("maesro", "maestro", 0.95) == pytest.approx(6 / 7)  # a letter left out
    # From six letters one slip of any kind reaches ONE_SLIP: how common the word is (the
    # calibrated evidence) says whether it is another name.
    assert strict_similarity("hengaf", "hengam", 0.9) == pytest.approx(ONE_SLIP)
    assert strict_similarity("darkno", "darkon", 0.95) == pytest.approx(ONE_SLIP)  # two letters swapped
    # A letter added or dropped at the end makes another name: "Martins" is not "Martin".
    assert strict_similarity("martins", "martin", 0.95) < 0.84
    assert strict_similarity("rivera", "rimera", 0.9, query_listed=True) < 0.84
    assert strict_similarity("horak", "horae", 0.92) == pytest.approx(0.8)  # five letters: no


# --- on the real lists -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def screener() -> Screener:
    return loaded_screening()[1]


@pytest.fixture(scope="module")
def policy(screener: Screener) -> ScreeningPolicy:
    return screener.policy


@pytest.mark.parametrize(
    ("party", "list_id", "entry_id"),
    [
        ("CJSC Bank for Foreign Trade of theRussian Federation", "SDN", "17013"),  # a filler word glued on
        ("WELFARE OFHUMANITY", "SDN", "7140"),
        ("Vladimir ZEDXION LIMITED", "SDN", None),  # a common word added
        ("هسن دهر اويس", "SDN", None),  # HASSAN DAHIR AWEYS in Arabic script
        ("ολεγ βαλεντινοβιχ μπελοζεροβ", "SDN", None),  # Oleg Valentinovich BELOZEROV in Greek
    ],
)
def test_listed_parties_written_so_are_found_for_review(
    screener: Screener, policy: ScreeningPolicy, party: str, list_id: str, entry_id: str | None
) -> None:
    matches = [m for m in screener.screen_name(party) if m.list_id == list_id]
    assert matches, party
    best = max(matches, key=lambda m: m.score)
    if entry_id is not None:
        assert entry_id in {m.entry_id for m in matches}
    assert best.score >= policy.review_threshold


def test_a_filler_word_glued_on_is_taken_off_only_a_long_listed_word(screener: Screener) -> None:
    index = screener.matcher
    assert index._unglued(("welfare", "ofhumanity")) == ("welfare", "humanity")
    for whole in ("ofelia", "ivanof", "andreas", "theron"):
        assert index._unglued(("maria", whole)) is None


def test_a_name_found_by_respacing_is_never_certain(screener: Screener) -> None:
    [match] = [m for m in screener.screen_name("WELFARE OFHUMANITY") if m.entry_id == "7140"]
    assert match.score < 1.0


@pytest.mark.parametrize("innocent", ["Tauber GmbH", "Rivera Ltd", "ليم الأيوبي", "الشايع PLC"])
def test_near_names_the_lists_do_not_hold_are_no_hit(screener: Screener, innocent: str) -> None:
    assert screener.screen_name(innocent) == []


def test_trimming_the_caches_before_a_list_update_changes_no_answer(screener: Screener) -> None:
    names = ["Bavaud Consulting", "Jiangsu Hengrui Trading", "ολεγ παντελεεβ", "Hines Ltd"]
    before = [[(m.list_id, m.entry_id, m.score) for m in screener.screen_name(n)] for n in names]
    index = screener.matcher
    assert isinstance(index, TokenIndex)
    assert index.trim_caches() > 0
    assert not index._neighbour_cache and not index._volumes and not index._query_weights
    assert [[(m.list_id, m.entry_id, m.score) for m in screener.screen_name(n)] for n in names] == before
