"""The Arabic article glued to a listed word (services/screening/article.py): which glued words
carry it, and the index reading such a name with the article apart as well."""

from __future__ import annotations

import pytest

from services.screening.article import article_variant, glued_article
from services.screening.entries import ListEntry
from services.screening.index import NameQuery, TokenIndex

KNOWN = frozenset({"alireza", "hassan", "alhassan", "alexander"})


@pytest.mark.parametrize(
    ("token", "rest"),
    [
        ("albakhatra", "bakhatra"),  # not a known name: the article comes off
        ("elsayed", "sayed"),
        ("alhassan", "hassan"),  # a name, and so is what remains
        ("alireza", None),  # Ali + Reza: "ireza" is no name
        ("alexander", None),  # a vowel after the article
        ("alliance", None),  # an l after it
        ("almaz", None),  # too little left
        ("al", None),
        ("bakhatra", None),
    ],
)
def test_a_glued_article_is_read_from_the_word_not_from_a_list_of_names(token: str, rest: str | None) -> None:
    assert glued_article(token, KNOWN.__contains__) == rest


def test_only_an_entry_of_a_country_whose_names_carry_the_article_gets_the_variant() -> None:
    words: dict[str, str] = {}
    got = article_variant(("khalid", "albakhatra"), ("JO",), KNOWN.__contains__, words)
    assert got == ("khalid", "al", "bakhatra")
    assert got is not None and all(words[t] is t for t in got)  # one string per word
    assert article_variant(("ramon", "alcides"), ("CO",), KNOWN.__contains__, {}) is None
    assert article_variant(("khalid", "jameel"), ("JO",), KNOWN.__contains__, {}) is None
    assert article_variant((), ("JO",), KNOWN.__contains__, {}) is None


def _entry(name: str, countries: tuple[str, ...]) -> ListEntry:
    return ListEntry("OFAC", "SDN", "1", name, (), "individual", ("SDGT",), countries)


@pytest.mark.parametrize(
    "query",
    ["Khalid Jameel Bakhatra", "Khalid Jameel El Bakhatra", "خالد جميل البخترة", "Khalid Jameel Albakhatra"],
)
def test_a_name_the_list_glues_is_found_with_the_article_apart_dropped_or_in_arabic_script(
    query: str,
) -> None:
    glued = TokenIndex.build([_entry("ALBAKHATRA, Khalid Jameel", ("JO",))])
    found = glued.match(NameQuery.of(query), min_score=0.84)
    assert [m.entry.entry_id for m in found] == ["1"]
    assert found[0].matched_name == "ALBAKHATRA, Khalid Jameel"  # the name as listed, for the reviewer


def test_elsewhere_the_glued_word_stays_one_word() -> None:
    index = TokenIndex.build([_entry("ALBAKHATRA, Khalid Jameel", ("CO",))])
    assert index.match(NameQuery.of("Khalid Jameel Bakhatra"), min_score=0.84) == []
    assert len(index.names) == 1


def test_the_house_particle_reads_as_the_lists_write_it() -> None:
    # آل ("the house of") is the particle "al" of "Faisal Al Saud", not a name whose short vowels
    # are unknown; ال standing alone stays letters of a name.
    assert NameQuery.of("فيصل آل سعود", None).tokens == ("~fysl", "al", "~swd")
    assert NameQuery.of("Faisal Al Saud", None).tokens == ("faisal", "al", "saud")
    assert NameQuery.of("تشن ال بك", None).tokens == ("~tshn", "~al", "~bk")
