"""ISO codes for the nationality, country and language names that iSAMS keeps as free text.

Each name is looked up first in the record's own `*IsoMappings` (the school's iSAMS Mappings
Manager, which wins), then by name in published data:
- countries and nationalities (ISO 3166-1 alpha-2): pycountry's ISO names, plus countryinfo's
  alternative spellings and demonyms, so that adjectives count (`British` → `GB`);
- languages (ISO 639-2, upper-case): the ISO 639-3 code tables and name index shipped by
  python-iso639, limited to languages that have an ISO 639-2 code.
A name found nowhere is dropped with a warning: free text is never sent to ManageBac+.
Warnings name the field, never the value (it is a child's personal data).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from consumers.domain.isams import IsoMapping

# The UK's home nations are nationalities on many UK schools' iSAMS lists, but not ISO
# countries, so no country data set carries them (countryinfo has only "Welsh").
_HOME_NATIONS = ("English", "Scottish", "Welsh", "Northern Irish")
_ALPHA_2 = re.compile(r"[A-Z]{2}")
_ALPHA_3 = re.compile(r"[A-Z]{3}")
_QUALIFIER = re.compile(r"\s*\([^)]*\)\s*$")
_SPACES = re.compile(r"\s+")
_LOOKUP_CACHE = 4096


def _key(name: str) -> str:
    """Fold a name for matching: case, accents, curly quotes, spacing and a leading "the"."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    folded = _SPACES.sub(" ", plain.replace("\u2019", "'").replace("\u2018", "'")).strip()
    return folded.casefold().removeprefix("the ")


_Candidate = tuple[int, tuple[object, ...], str]  # (level, preference, code)


class _Index:
    """Names → codes; when a name fits several codes the lowest (level, preference) wins."""

    def __init__(self) -> None:
        self._candidates: defaultdict[str, list[_Candidate]] = defaultdict(list)

    def add(self, name: object, level: int, preference: tuple[object, ...], code: str) -> None:
        if isinstance(name, str) and (key := _key(name)):
            self._candidates[key].append((level, preference, code))

    def build(self) -> dict[str, str]:
        return {
            key: min(found, key=lambda item: (item[0], *item[1], item[2]))[2]
            for key, found in self._candidates.items()
        }


@functools.cache
def _countries() -> dict[str, str]:
    """Build the country and nationality name index (once per process)."""
    import pycountry
    from countryinfo import CountryInfo

    known = {str(country.alpha_2) for country in pycountry.countries}
    others: list[Mapping[str, object]] = list(CountryInfo.all().values())
    population: dict[str, int] = {}
    for info in others:
        code = _country_info_code(info)
        people = info.get("population")
        if code in known and isinstance(people, int):
            population[code] = max(population.get(code, 0), people)

    def preference(code: str) -> tuple[object, ...]:
        # "Chinese" is CN, not HK; "French" is FR, not RE: prefer the most populous.
        return (-population.get(code, 0),)

    index = _Index()
    for country in pycountry.countries:
        code = str(country.alpha_2)
        for attribute in ("name", "common_name", "official_name"):
            index.add(getattr(country, attribute, None), 0, preference(code), code)
        index.add(code, 1, preference(code), code)
        index.add(getattr(country, "alpha_3", None), 1, preference(code), code)
    for info in others:
        code = _country_info_code(info)
        if code not in known:
            continue
        index.add(info.get("name"), 0, preference(code), code)
        spellings = info.get("altSpellings")
        for spelling in spellings if isinstance(spellings, list) else ():
            index.add(spelling, 1, preference(code), code)
        for demonym in re.split(r"[,/]", str(info.get("demonym") or "")):
            index.add(demonym, 2, preference(code), code)
    for nation in _HOME_NATIONS:
        index.add(nation, 2, preference("GB"), "GB")
    return index.build()


def _country_info_code(info: Mapping[str, object]) -> str:
    iso = info.get("ISO")
    code = iso.get("alpha2") if isinstance(iso, dict) else None
    return code.upper() if isinstance(code, str) else ""


@functools.cache
def _alpha3_to_alpha2() -> dict[str, str]:
    import pycountry

    return {str(country.alpha_3): str(country.alpha_2) for country in pycountry.countries}


@functools.cache
def _languages() -> tuple[dict[str, str], dict[str, str]]:
    """Build the language name index and the ISO 639-1 → 639-2 table (once per process).

    Names match as published ("Panjabi", "Punjabi"), without a trailing qualifier
    ("Swahili (macrolanguage)" → "Swahili"), and by the head of an inverted name
    ("Greek, Modern (1453-)" → "Greek"). Ties prefer languages with an ISO 639-1 code, then
    living ones, so "Greek" is Modern Greek, not Ancient Greek.
    """
    from iso639 import ALL_LANGUAGES

    index = _Index()
    by_part1: dict[str, str] = {}
    for language in ALL_LANGUAGES:
        if language.status != "A" or not language.part2t:
            continue
        code = language.part2t.upper()
        if language.part1:
            by_part1[language.part1.upper()] = code
        preference = (language.part1 is None, language.type != "L")
        names = {language.name}
        for other in language.other_names or ():
            names.update((other.print, other.inverted))
        for name in names:
            index.add(name, 0, preference, code)
            bare = _QUALIFIER.sub("", name)
            index.add(bare, 1, preference, code)
            if "," in bare:
                index.add(bare.split(",", 1)[0], 2, preference, code)
    return index.build(), by_part1


@functools.lru_cache(maxsize=_LOOKUP_CACHE)
def country_from_name(name: str) -> str | None:
    """Return the ISO 3166-1 alpha-2 code for a country name or nationality, or None."""
    return _countries().get(_key(name))


@functools.lru_cache(maxsize=_LOOKUP_CACHE)
def language_from_name(name: str) -> str | None:
    """Return the upper-case ISO 639-2 (terminology) code for a language name, or None."""
    return _languages()[0].get(_key(name))


def _mapped(mappings: Sequence[IsoMapping]) -> dict[str, IsoMapping]:
    table: dict[str, IsoMapping] = {}
    for mapping in mappings:
        if mapping.isams_name is not None:
            table.setdefault(_key(mapping.isams_name), mapping)
    return table


def _code(value: str | None, pattern: re.Pattern[str]) -> str | None:
    code = (value or "").strip().upper()
    return code if pattern.fullmatch(code) else None


def _country(name: str, table: dict[str, IsoMapping]) -> str | None:
    mapping = table.get(_key(name))
    if mapping is not None:
        code = _code(mapping.iso_code2_char, _ALPHA_2)
        if code is None and (alpha_3 := _code(mapping.iso_code3_char, _ALPHA_3)):
            code = _alpha3_to_alpha2().get(alpha_3)
        if code is not None:
            return code
    found = country_from_name(name)
    if found is None and mapping is not None and mapping.iso_name:
        found = country_from_name(mapping.iso_name)
    return found


def _language(name: str, table: dict[str, IsoMapping]) -> str | None:
    mapping = table.get(_key(name))
    if mapping is not None:
        code = _code(mapping.iso_code3_char, _ALPHA_3)
        if code is None and (alpha_2 := _code(mapping.iso_code2_char, _ALPHA_2)):
            code = _languages()[1].get(alpha_2)
        if code is not None:
            return code
    found = language_from_name(name)
    if found is None and mapping is not None and mapping.iso_name:
        found = language_from_name(mapping.iso_name)
    return found


def _unknown(field: str, count: int, what: str) -> str:
    if count == 1:
        return (
            f"{field}: one iSAMS value has no {what} and was not sent; "
            "map it in the iSAMS Mappings Manager"
        )
    return (
        f"{field}: {count} iSAMS values have no {what} and were not sent; "
        "map them in the iSAMS Mappings Manager"
    )


def _codes(
    names: Iterable[str], lookup: functools.partial[str | None], field: str, what: str
) -> tuple[list[str], list[str]]:
    codes: list[str] = []
    unknown = 0
    for name in names:
        code = lookup(name)
        if code is None:
            unknown += 1
        elif code not in codes:
            codes.append(code)
    return codes, ([_unknown(field, unknown, what)] if unknown else [])


def nationality_codes(
    names: Iterable[str], mappings: Sequence[IsoMapping], field: str = "nationalities"
) -> tuple[list[str], list[str]]:
    """Return the nationalities' ISO 3166-1 alpha-2 codes (in order, once each) and warnings."""
    lookup = functools.partial(_country, table=_mapped(mappings))
    return _codes(names, lookup, field, "ISO country code")


def language_codes(
    names: Iterable[str], mappings: Sequence[IsoMapping], field: str = "languages"
) -> tuple[list[str], list[str]]:
    """Return the languages' upper-case ISO 639-2 codes (in order, once each) and warnings."""
    lookup = functools.partial(_language, table=_mapped(mappings))
    return _codes(names, lookup, field, "ISO 639-2 language code")


def country_code(
    name: str | None, mappings: Sequence[IsoMapping], field: str = "country"
) -> tuple[str | None, list[str]]:
    """Return a country's ISO 3166-1 alpha-2 code (None when empty or unknown) and warnings."""
    if name is None or not name.strip():
        return None, []
    codes, warnings = nationality_codes([name], mappings, field)
    return (codes[0] if codes else None), warnings
