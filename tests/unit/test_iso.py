"""ISO lookups: the record's mappings first, then names and nationality adjectives."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.domain.isams import IsoMapping
from consumers.domain.iso import (
    country_code,
    country_from_name,
    language_codes,
    language_from_name,
    nationality_codes,
)


def mapping(**fields: Any) -> IsoMapping:
    return IsoMapping.model_validate(fields)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("British", "GB"),
        ("british", "GB"),
        ("  British ", "GB"),
        ("English", "GB"),
        ("Scottish", "GB"),
        ("Welsh", "GB"),
        ("Northern Irish", "GB"),
        ("Irish", "IE"),
        ("French", "FR"),
        ("Chinese", "CN"),  # not HK or MO, which share the adjective
        ("American", "US"),
        ("Swiss", "CH"),
        ("Dutch", "NL"),
        ("Emirati", "AE"),
        ("South Korean", "KR"),
        ("Filipino", "PH"),
        ("New Zealander", "NZ"),
        ("United Kingdom", "GB"),
        ("Great Britain", "GB"),
        ("UK", "GB"),
        ("The Netherlands", "NL"),
        ("Côte d'Ivoire", "CI"),
        ("Cote d\u2019Ivoire", "CI"),
        ("Czechia", "CZ"),
        ("Korea, Republic of", "KR"),
        ("Germany", "DE"),
    ],
)
def test_country_or_nationality_by_name(name: str, code: str) -> None:
    assert country_from_name(name) == code


@pytest.mark.parametrize("name", ["Martian", "", "Atlantis", "Serbia and Montenegro"])
def test_unknown_country_names(name: str) -> None:
    assert country_from_name(name) is None


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("English", "ENG"),
        ("english", "ENG"),
        ("Spanish", "SPA"),
        ("German", "DEU"),  # ISO 639-2/T, as iSAMS's isoCode3Char and ISO 639-3 spell it
        ("French", "FRA"),
        ("Chinese", "ZHO"),
        ("Greek", "ELL"),  # Modern Greek (has an ISO 639-1 code), not Ancient Greek
        ("Swahili", "SWA"),  # "Swahili (macrolanguage)"
        ("Malay", "MSA"),
        ("Punjabi", "PAN"),  # an ISO 639-3 name-index spelling of "Panjabi"
        ("Filipino", "FIL"),  # in ISO 639-2 although not in ISO 639-1
        ("Welsh", "CYM"),
        ("Persian", "FAS"),
        ("Scottish Gaelic", "GLA"),
    ],
)
def test_language_by_name(name: str, code: str) -> None:
    assert language_from_name(name) == code


@pytest.mark.parametrize(
    "name",
    [
        "Klingonese",
        "Mandarin Chinese",  # ISO 639-3 only (cmn): ManageBac+ takes ISO 639-2
        "Spanish (Latin American)",  # a school's own name: needs a mapping
    ],
)
def test_unknown_language_names(name: str) -> None:
    assert language_from_name(name) is None


def test_nationality_mapping_wins_over_the_name() -> None:
    mappings = [mapping(iSAMSName="Scottish", isoCode2Char="GB", isoCode3Char="GBR")]
    assert nationality_codes(["Scottish"], mappings) == (["GB"], [])
    # A school may map a name unusually: its mapping is what counts.
    assert nationality_codes(["British"], [mapping(iSAMSName="british", isoCode2Char="ie")]) == (
        ["IE"],
        [],
    )


def test_nationality_mapping_with_only_alpha3_or_only_iso_name() -> None:
    assert nationality_codes(["Caledonian"], [mapping(iSAMSName="Caledonian", isoCode3Char="gbr")])[
        0
    ] == ["GB"]
    only_name = [mapping(iSAMSName="Caledonian", isoCode2Char="", isoName="United Kingdom")]
    assert nationality_codes(["Caledonian"], only_name) == (["GB"], [])


def test_nationality_mapping_without_usable_code_falls_back_to_the_name() -> None:
    assert nationality_codes(["British"], [mapping(iSAMSName="British", isoCode2Char="x1")]) == (
        ["GB"],
        [],
    )


def test_nationalities_keep_order_once_each_and_drop_unknown_with_a_warning() -> None:
    codes, warnings = nationality_codes(["French", "British", "English", "Martian"], [])
    assert codes == ["FR", "GB"]
    assert warnings == [
        "nationalities: one iSAMS value has no ISO country code and was not sent; "
        "map it in the iSAMS Mappings Manager"
    ]
    assert not any("Martian" in warning for warning in warnings)


def test_several_unknown_values_make_one_warning() -> None:
    _, warnings = nationality_codes(["Martian", "Venusian"], [])
    assert len(warnings) == 1
    assert warnings[0].startswith("nationalities: 2 iSAMS values have no ISO country code")


def test_language_mapping_takes_iso_code3_upper_cased() -> None:
    mappings = [
        mapping(
            iSAMSName="Spanish (Latin American)",
            isoCode2Char="es",
            isoCode3Char="spa",
            isoName="Spanish",
        )
    ]
    assert language_codes(["Spanish (Latin American)"], mappings) == (["SPA"], [])


def test_language_mapping_with_only_iso_code2_converts_to_639_2() -> None:
    mappings = [mapping(iSAMSName="Deutsch (Schweiz)", isoCode2Char="de")]
    assert language_codes(["Deutsch (Schweiz)"], mappings) == (["DEU"], [])


def test_languages_unknown_dropped_with_a_warning() -> None:
    codes, warnings = language_codes(["English", "Klingonese", "English"], [])
    assert codes == ["ENG"]
    assert warnings == [
        "languages: one iSAMS value has no ISO 639-2 language code and was not sent; "
        "map it in the iSAMS Mappings Manager"
    ]


def test_country_code() -> None:
    assert country_code(None, []) == (None, [])
    assert country_code("  ", []) == (None, [])
    assert country_code("France", []) == ("FR", [])
    assert country_code("Alba", [mapping(iSAMSName="Alba", isoCode2Char="GB")]) == ("GB", [])
    code, warnings = country_code("Narnia", [])
    assert code is None
    assert warnings[0].startswith("country: one iSAMS value has no ISO country code")


def test_lookups_are_cached() -> None:
    country_from_name("British")
    before = country_from_name.cache_info().hits
    country_from_name("British")
    assert country_from_name.cache_info().hits == before + 1
