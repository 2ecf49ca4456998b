"""Masking (docs/design.md §6): personal values in plans and reports show their shape and
first letters only; a masked value never contains the value."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.domain.masking import DATE, EMPTY, mask


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("John Doe", "J… D…"),
        ("  Ada   Lovelace ", "A… L…"),
        ("Mary-Jane O'Neil", "M… O…"),
        ("Zoë", "Z…"),
        ("j", "j…"),
        ("jo.doe@example.org", "j…@e…"),
        ("Ada.Lovelace@School.Example", "A…@S…"),
        ("odd@@twice.example", "o…@t…"),  # the domain is after the last @
        ("@example.org", "…@e…"),
        ("2014-12-10", DATE),
        ("2014-12-10T00:00:00", DATE),
        ("07700 900123", "#… #…"),
        ("+44 20 7946 0000", "+… #… #… #…"),
        ("SW1A 1AA", "S… #…"),
        (20000007, "#…"),
        (3.5, "#…"),
        (["GB", "FR"], "[G…, F…]"),
        (("ENG",), "[E…]"),
        (None, EMPTY),
        ("", EMPTY),
        ("   ", EMPTY),
        ([], EMPTY),
    ],
)
def test_values_show_their_first_letters_and_shape_only(value: object, shown: str) -> None:
    assert mask(value) == shown


@given(st.text(min_size=3).filter(lambda text: len(text.strip()) >= 3 and "…" not in text))
def test_a_masked_word_never_shows_more_than_its_first_character(text: str) -> None:
    masked = mask(text)
    assert text.strip() not in masked
    visible = masked.replace("…", "").replace(" ", "").replace("@", "").replace("#", "")
    visible = visible.replace("-", "").replace("[", "").replace("]", "").replace(",", "")
    assert len(visible) <= len(text.split()) * 2  # one character per word (two for e-mails)


@given(st.dates())
def test_no_digit_of_a_date_shows(day: object) -> None:
    assert mask(str(day)) == DATE
