"""The independent labelled set's own script renderings (bench/screening/independent.py)."""

from __future__ import annotations

import pytest

from bench.screening.independent import to_arabic


@pytest.mark.parametrize(
    ("latin", "persian", "first_letter"),
    [
        ("Gholamreza", True, "غ"),  # not گ followed by ح
        ("Khalil", True, "خ"),  # not ک followed by ح
        ("Ghaffar", False, "غ"),
        ("Khalid", False, "خ"),
        ("Gudarzi", True, "گ"),  # a g alone is گ in Persian
        ("Kazemi", True, "ک"),
    ],
)
def test_two_letter_spellings_are_one_letter_in_arabic_and_persian_script(
    latin: str, persian: bool, first_letter: str
) -> None:
    written = to_arabic(latin, persian)
    assert written[0] == first_letter
    assert "ح" not in written[:2]
