"""What the matcher reads through since it was checked on an independent set (docs/benchmarks.md):
initials and legal forms written letter by letter, a word boundary that slipped, ranks and titles,
abbreviated generic words, a long name short of one word, Russian names in other romanisations,
Persian spellings; and the evidence that keeps near-names out: an unexplained share of the party's
name, the entry's type, the party's country."""

from __future__ import annotations

import pytest

from services.screening.domain import Screener, TokenIndex, analyse_name
from services.screening.normalise import skeletons, slavic_respellings
from services.screening.scoring import (
    ABBREVIATION,
    ONE_SLIP,
    TOKEN_PAIR_MIN,
    abbreviation_similarity,
    align,
    dropped_middle,
    strict_similarity,
    token_similarity,
    type_conflict,
)
from tests.screening_support import loaded_screening

# --- normalisation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "tokens", "forms"),
    [
        ("t f m c", ("tfmc",), ()),
        ("T. F. M. C. Trading", ("tfmc", "trading"), ()),
        ("Acme s de r l de c v", ("acme",), ("sa",)),
        ("Acme S. de R.L. de C.V.", ("acme",), ("sa",)),
        ("Schneider g m b h", ("schneider",), ("gmbh",)),
        ("Boyle Chemical C. O. L. T. D.", ("boyle", "chemical"), ("ltd",)),
        ("Acme sp z o o", ("acme",), ("llc",)),
        ("H&M AB", ("h", "m"), ("jsc",)),  # letters joined by "&" are two initials, not a word
    ],
)
def test_initials_and_forms_written_letter_by_letter_are_one_word(
    written: str, tokens: tuple[str, ...], forms: tuple[str, ...]
) -> None:
    analysed = analyse_name(written)
    assert (analysed.tokens, analysed.forms) == (tokens, forms)


@pytest.mark.parametrize(
    ("written", "tokens"),
    [
        ("JOINT STOC KCOMPANY ARGUMENT", ("argument",)),
        ("LIMITEDL IABILITY COMPANY GROSS", ("gross",)),
        ("ETANA TRADIN GDMCC", ("etana", "trading")),
        ("Chris Pa", ("chris", "pa")),  # no form of four letters in reach: a name
        ("SALTY WOLF", ("salty", "wolf")),
        ("SASCO ANGARA", ("sasco", "angara")),
    ],
)
def test_a_boundary_slipped_into_a_legal_form_is_read_back(written: str, tokens: tuple[str, ...]) -> None:
    assert analyse_name(written).tokens == tokens


def test_ranks_are_titles_only_where_a_name_begins() -> None:
    assert analyse_name("Brig. Gen. Husayn Ali FAUR").tokens == ("husayn", "ali", "faur")
    assert analyse_name("John MAJOR").tokens == ("john", "major")
    assert analyse_name("ALI ALHAY").tokens == ("ali", "alhay")  # a title with a slip, at the end
    assert analyse_name("Dr. Ayman Zawahiri").titled
    assert not analyse_name("CAPTAIN YAKUBOVICH").titled  # a rank may be a vessel's name


def test_a_leading_rank_is_an_optional_word_of_the_name() -> None:
    company = analyse_name("GENERAL TECHNOLOGY LIMITED")
    assert (company.tokens, company.ranked, company.forms) == (
        ("technology",),
        ("general", "technology"),
        ("ltd",),
    )
    assert company.readings == (("technology",), ("general", "technology"))
    officer = analyse_name("Brig. Gen. Husayn Ali FAUR")
    assert officer.ranked == ("brig", "gen", "husayn", "ali", "faur")
    assert analyse_name("John MAJOR").ranked is None  # not at the start: a name word, as before
    assert analyse_name("John MAJOR").readings == (("john", "major"),)
    assert analyse_name("Sheikh Ahmed").ranked is None  # an honorific is no word of a name


@pytest.mark.parametrize(
    ("token", "reading"),
    [
        ("nikolajewitsch", "nikolayevich"),  # German
        ("xoxlova", "khokhlova"),  # GOST 7.79 system B
        ("chakouta", "shakuta"),  # French
        ("iurii", "yurii"),  # ICAO 9303
        ("sacharow", "zakharov"),  # German "s" between vowels is з
    ],
)
def test_a_russian_name_in_another_romanisation_is_read_back_into_bgn_pcgn(token: str, reading: str) -> None:
    assert reading in slavic_respellings(token)


@pytest.mark.parametrize(
    ("written", "tokens"),
    [
        ("OBSCHTSCHESTWO S OGRANITSCHENNOI OTWEZTWENNOSTIU MORE REKA SERWIS", ("more", "reka", "serwis")),
        ("OBCHTCHESTVO S OGRANITCHENNOI OTVETSTVENNOSTIOU TCHIP EKSPERT", ("tchip", "ekspert")),
        ("OBSHHESTVO S OGRANICHENNOI OTVECZTVENNOSTIU LAB SERVIS", ("lab", "servis")),
        ("Sao Paulo Trading", ("sao", "paulo", "trading")),  # a short word is not read as ZAO
    ],
)
def test_a_russian_legal_form_in_another_romanisation_is_a_legal_form(
    written: str, tokens: tuple[str, ...]
) -> None:
    assert analyse_name(written).tokens == tokens


def test_a_one_word_name_in_another_romanisation_counts_as_one_slip() -> None:
    assert strict_similarity("oxrana", "okhrana", 0.95) == ONE_SLIP  # GOST 7.79: x for kh
    assert strict_similarity("krimtez", "krimtets", 0.95) == ONE_SLIP  # German: z for ts
    assert strict_similarity("oxrama", "okhrana", 0.88) < TOKEN_PAIR_MIN


def test_persian_and_arabic_spellings_of_v_and_z_share_a_skeleton() -> None:
    [reza] = analyse_name("رضا").tokens
    assert set(skeletons(reza)) & set(skeletons("reza"))
    assert token_similarity(reza, "reza") >= 0.9
    [javad] = analyse_name("جواد").tokens
    assert token_similarity(javad, "javad") >= 0.9
    # The article's alif in "Abd al-Lah" is not a vowel of the name.
    [abdullah] = analyse_name("عبدالله").tokens
    assert token_similarity(abdullah, "abdullah") >= 0.9


def test_a_latin_final_h_may_be_the_consonant_arabic_script_writes() -> None:
    [saleh] = analyse_name("صالح").tokens
    assert token_similarity(saleh, "saleh") >= 0.9  # ح heard as the final h
    [fatemeh] = analyse_name("فاطمه").tokens
    assert token_similarity(fatemeh, "fatemeh") >= 0.9  # a final h read as a vowel
    assert token_similarity(saleh, "sal") == 0.0


def test_persian_seyyed_is_a_name_as_in_latin_letters_and_mr_a_title() -> None:
    seyyed, mehdi, rahimi = analyse_name("سید مهدی رحیمی").tokens
    assert token_similarity(seyyed, "seyyed") >= 0.9
    assert analyse_name("Seyyed Mehdi RAHIMI").tokens == ("seyyed", "mehdi", "rahimi")
    assert analyse_name("آقای مهدی رحیمی").tokens == (mehdi, rahimi)  # Mr


# --- scoring -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("short", "word"),
    [
        ("intl", "international"),
        ("mgmt", "management"),
        ("tech", "technology"),
        ("md", "muhammad"),
        ("natl", "national"),  # the beginning kept, then consonants down to the last letter
        ("devt", "development"),
        ("prodn", "production"),
        ("grp", "group"),  # three letters: all of the word's consonants
    ],
)
def test_records_abbreviations_of_generic_words_align(short: str, word: str) -> None:
    assert abbreviation_similarity(short, word) == ABBREVIATION
    assert token_similarity(short, word) == ABBREVIATION


@pytest.mark.parametrize(
    ("short", "word"),
    [
        ("ali", "alawi"),
        ("cms", "commodities"),  # three letters, not all of the word's consonants: an acronym
        ("int", "investment"),
        ("mgt", "management"),
        ("ting", "trading"),  # a vowel after the beginning makes a name
        ("natan", "national"),
        ("nato", "national"),  # not ending as the word does
    ],
)
def test_names_and_acronyms_are_not_read_as_abbreviations(short: str, word: str) -> None:
    assert abbreviation_similarity(short, word) == 0.0


def test_an_abbreviation_is_no_slip_for_the_one_word_rule() -> None:
    # A name of one informative word holds it to its letters; a generic word written short keeps
    # what the abbreviation reads, a slip does not.
    assert strict_similarity("res", "research", ABBREVIATION) == ABBREVIATION
    assert strict_similarity("engg", "engineering", ABBREVIATION) == ABBREVIATION
    assert strict_similarity("resa", "research", 0.88) < TOKEN_PAIR_MIN


def test_a_long_name_short_of_a_word_that_does_not_identify_it_still_scores_high() -> None:
    listed = ("nordic", "heavy", "machinery", "trading")
    weights = [1.0, 0.6, 0.4, 0.2]

    def exact(q: str, t: str) -> float:
        return 1.0 if q == t else 0.0

    shortened = align(("nordic", "machinery", "trading"), [1.0, 0.4, 0.2], listed, weights, exact)
    assert shortened.score >= 0.9
    # Not the most telling word: without "nordic" the name says little.
    anonymous = align(("heavy", "machinery", "trading"), [0.6, 0.4, 0.2], listed, weights, exact)
    assert anonymous.score < 0.84


def test_a_word_left_out_of_the_middle_of_a_name_costs_less_than_one_at_its_end() -> None:
    # "Diego ROMERO" for "Diego AYALA ROMERO", "Viktor BOUT" for "Viktor Anatolijevitch BOUT": an
    # order keeps a name's ends, however rare the word it leaves out of the middle.
    listed = ("diego", "ayala", "romero")
    weights = [0.8, 1.0, 0.8]

    def exact(q: str, t: str) -> float:
        return 1.0 if q == t else 0.0

    middle = align(("diego", "romero"), [0.8, 0.8], listed, weights, exact)
    end = align(("diego", "ayala"), [0.8, 1.0], listed, weights, exact)
    assert middle.score > end.score and middle.score >= 0.9  # 0.877 at the cost of any other word
    assert middle.unmatched_listed == ("ayala",) and middle.listed_unexplained == pytest.approx(
        0.3846, abs=1e-4
    )
    # One shortening at a time: with a slip beside it, the word left out costs as any other.
    slipped = align(
        ("diega", "romero"), [0.8, 0.8], listed, weights, lambda q, t: 0.9 if q[:3] == t[:3] else 0.0
    )
    assert slipped.score < 0.84
    assert dropped_middle(3, 1, True, True)
    assert not dropped_middle(3, 1, True, False)  # the last word not held: not the name's ends
    assert not dropped_middle(3, 2, True, True)  # the end itself
    assert not dropped_middle(2, 1, True, True)


def test_the_alignment_reports_the_share_of_each_name_left_unexplained() -> None:
    def exact(q: str, t: str) -> float:
        return 1.0 if q == t else 0.0

    alone = align(("julia",), [0.7], ("julia",), [0.7], exact)
    longer = align(("julia", "morgan"), [0.7, 0.8], ("julia",), [0.7], exact, query_costs=[0.56, 0.64])
    assert (alone.score, alone.query_unexplained, alone.listed_unexplained) == (1.0, 0.0, 0.0)
    assert longer.score == pytest.approx(1.4 / (1.4 + 0.64), abs=1e-4)
    assert longer.query_unexplained == pytest.approx(0.8 / 1.5, abs=1e-4)
    assert longer.listed_unexplained == 0.0


def test_a_name_contradicting_the_entry_type_is_a_conflict() -> None:
    assert type_conflict(True, False, "vessel") == "vessel"  # "AMBER Inc." and the vessel AMBER
    assert type_conflict(False, True, "entity") == "entity"  # "Dr. Mercury" and MERCURY LLC
    assert type_conflict(False, False, "vessel", unexplained=True) == "vessel"  # "Christina Diaz"
    assert type_conflict(False, False, "vessel") is None
    assert type_conflict(True, False, "entity") is None
    assert type_conflict(True, True, None) is None


# --- on the real lists -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def screener() -> Screener:
    return loaded_screening()[1]


def found(screener: Screener, name: str, country: str | None = None) -> dict[tuple[str, str], float]:
    return {(m.list_id, m.entry_id): m.score for m in screener.screen_name(name, country)}


@pytest.mark.parametrize(
    ("party", "entry"),
    [
        ("Taye bNAIL", ("SDN", "12023")),  # a boundary moved: the same letters in the same order
        ("DENA-TANKE RS", ("SDN", "15145")),
        ("Nikolai Patrushew", None),  # German romanisation of PATRUSHEV, Nikolai
        ("Lt. Col. Ignace MURWANASHYAKA", ("SDN", "10036")),
        ("Viktor BOUT", None),  # BOUT, Viktor Anatolijevitch: the patronymic left out
        ("Nuclear Res Center", None),  # one informative word, but "Res" is RESEARCH written short
        ("JS ENGG", None),
    ],
)
def test_listed_parties_written_so_reach_review(
    screener: Screener, party: str, entry: tuple[str, str] | None
) -> None:
    scores = found(screener, party)
    review = screener.policy.review_threshold
    if entry is None:
        assert any(score >= review for score in scores.values()), party
    else:
        assert scores.get(entry, 0.0) >= review, (party, scores)


def test_a_rank_is_optional_on_both_sides(screener: Screener) -> None:
    def best(name: str, listed: str) -> float:
        return max((m.score for m in screener.screen_name(name) if m.entry_name == listed), default=0.0)

    for listed, slipped in (
        ("GENERAL TECHNOLOGY LIMITED", "Generral Technology Limited"),
        ("GENERAL TECHNOLOGY LIMITED", "Genral Technology Ltd"),
    ):
        exact = best(listed, listed)
        assert exact >= screener.policy.block_threshold
        assert best(listed.partition(" ")[2], listed) == exact  # the rank left out by the party
        # The rank slipped: the listed name's reading with it aligns the slip (it was a word of
        # the party's name the listed one, read without its rank, did not explain).
        assert best(slipped, listed) >= screener.policy.review_threshold, slipped
    # A rank before a listed person's name changes nothing (a title there, as before).
    officer = "Ignace MURWANASHYAKA"
    assert found(screener, f"Lt. Col. {officer}") == found(screener, officer)


def test_a_compact_match_is_never_certain(screener: Screener) -> None:
    assert 0.84 <= found(screener, "Taye bNAIL")[("SDN", "12023")] < 1.0


def test_a_company_is_not_the_vessel_of_the_same_word(screener: Screener) -> None:
    index = screener.matcher
    assert isinstance(index, TokenIndex)
    vessel = next(
        e for e in index.entries if e.entry_type == "vessel" and len(analyse_name(e.name).tokens) == 1
    )
    name = analyse_name(vessel.name).tokens[0]
    key = (vessel.list_id, vessel.entry_id)
    as_vessel = found(screener, name.upper())
    as_company = {(m.list_id, m.entry_id): m for m in screener.screen_name(f"{name.upper()} Inc.")}
    assert as_vessel.get(key, 0.0) >= screener.policy.block_threshold
    # Never blocked as the vessel; the evidence names the conflict.
    if key in as_company:
        assert as_company[key].score < screener.policy.block_threshold
        assert any(
            c.signal == "vessel_conflict" and c.contribution < 0
            for c in as_company[key].evidence.score_contributions
        )


def test_the_country_moves_the_score_and_the_evidence_says_by_how_much(screener: Screener) -> None:
    # "GEA Group" and "GEA OOO" (Russia) share one word: a German party is less likely the entry.
    entry = ("SDN", "45715")
    unknown = found(screener, "GEA Group")[entry]
    assert found(screener, "GEA Group", "RU")[entry] > unknown
    assert found(screener, "GEA Group", "DE").get(entry, 0.0) < unknown
    for country in (None, "RU", "DE"):
        for match in screener.screen_name("GEA Group", country):
            evidence = match.evidence
            assert evidence.calibration_version == screener.policy.calibration.version
            assert evidence.name_score is not None
            moved = sum(c.contribution for c in evidence.score_contributions)
            ceiling = 0.99 if evidence.name_score < 1 else 1.0
            assert match.score == pytest.approx(max(0.0, min(ceiling, evidence.name_score + moved)), abs=2e-4)
