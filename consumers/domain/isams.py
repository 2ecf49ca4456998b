"""iSAMS REST records as the sync reads them.

Parsing is lenient on purpose: iSAMS data is kept by hand in hundreds of schools, so a null,
a number where text was expected, or a date with a time must not stop a record from
syncing. Unknown fields are ignored. Only a student's `schoolId`, which names the record, is
required; contacts and employees are named by the event, so nothing on them is.
This module is the one place that knows the shape of iSAMS records and of their
`*IsoMappings` lists (`docs/reference/isams-fields.md`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

# .NET's DateTime.MinValue ("0001-01-01T00:00:00") and 1900-01-01 are iSAMS's "no date".
_FIRST_REAL_YEAR = 1901
_ISO_DATE = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})")
_INTEGER = re.compile(r"\s*[+-]?\d+(\.0*)?\s*")


def _text(value: object) -> str | None:
    """Return stripped text; numbers become text; empty and odd shapes become None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


def _day(value: object) -> date | None:
    """Return the date part of a date or date-time (`2013-04-17T00:00:00` → 2013-04-17)."""
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    elif isinstance(value, str) and (match := _ISO_DATE.match(value)):
        try:
            day = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            return None
    else:
        return None
    return day if day.year >= _FIRST_REAL_YEAR else None


def _moment(value: object) -> datetime | None:
    """Return a date-time from ISO 8601 text; anything unreadable becomes None."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def whole_number(value: object) -> int | None:
    """Return an integer from an int, an integral float or digits in text (else None)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value.strip().split(".")[0])
    return None


def _flag(value: object) -> bool | None:
    """Return a yes/no from a bool, 0/1, or words such as `true`, `yes`, `N`; else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        folded = value.strip().casefold()
        if folded in ("true", "yes", "y", "1"):
            return True
        if folded in ("false", "no", "n", "0"):
            return False
    return None


def _names(value: object) -> list[str]:
    """Return a list of names from a list of names, a single name or `[{"name": ...}]`."""
    items = value if isinstance(value, list | tuple) else [value]
    names = []
    for item in items:
        name = _text(item.get("name") if isinstance(item, Mapping) else item)
        if name is not None:
            names.append(name)
    return names


def _objects(value: object) -> list[Mapping[str, Any]]:
    """Return the objects of a list (a lone object counts as a list of one)."""
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, Mapping)]
    return []


Text = Annotated[str | None, BeforeValidator(_text)]
Day = Annotated[date | None, BeforeValidator(_day)]
Moment = Annotated[datetime | None, BeforeValidator(_moment)]
Integer = Annotated[int | None, BeforeValidator(whole_number)]
Names = Annotated[tuple[str, ...], BeforeValidator(_names)]
Flag = Annotated[bool | None, BeforeValidator(_flag)]


def is_current_status(status: str | None) -> bool:
    """Tell whether an iSAMS `systemStatus` means on roll: `Current` (status 1), any case."""
    return (status or "").casefold() in ("current", "1")


class _IsamsModel(BaseModel):
    """Base of iSAMS records: camelCase on the wire, snake_case in Python, extras ignored."""

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
    )


class IsoMapping(_IsamsModel):
    """One row of a school's iSAMS Mappings Manager: an iSAMS name and its ISO codes.

    The shape is not published; this is the project's assumption (`isams-fields.md`), e.g.
    `{"iSAMSName": "Scottish", "isoCode2Char": "GB", "isoCode3Char": "GBR", "isoName": ...}`.
    """

    isams_name: Text = Field(
        default=None, validation_alias=AliasChoices("iSAMSName", "isamsName", "isams_name")
    )
    iso_code2_char: Text = None
    iso_code3_char: Text = None
    iso_name: Text = None


IsoMappings = Annotated[tuple[IsoMapping, ...], BeforeValidator(_objects)]


class IsamsAddress(_IsamsModel):
    """One of a student's `homeAddresses`."""

    id: Text = None
    address1: Text = None
    address2: Text = None
    address3: Text = None
    town: Text = None
    county: Text = None
    postcode: Text = None
    country: Text = None


class IsamsStudent(_IsamsModel):
    """A pupil as `GET /api/students/{schoolId}?expand=...IsoMappings` returns it."""

    school_id: Annotated[str, BeforeValidator(_text)]
    id: Text = None
    school_code: Text = None
    person_id: Text = None
    person_guid: Text = None
    title: Text = None
    forename: Text = None
    middlenames: Text = Field(
        default=None, validation_alias=AliasChoices("middlenames", "middleNames")
    )
    surname: Text = None
    preferred_name: Text = None
    dob: Day = None
    gender: Text = None
    year_group: Integer = None
    form_group: Text = None
    enrolment_date: Day = None
    school_email_address: Text = None
    personal_email_address: Text = None
    mobile_number: Text = None
    nationalities: Names = ()
    languages: Names = ()
    resident_country: Text = None
    home_addresses: Annotated[tuple[IsamsAddress, ...], BeforeValidator(_objects)] = ()
    system_status: Text = None
    leaving_date: Day = None
    last_updated: Moment = None
    nationality_iso_mappings: IsoMappings = ()
    language_iso_mappings: IsoMappings = ()

    @property
    def is_current(self) -> bool:
        """Tell whether iSAMS counts the pupil as on roll (`Current`, status 1)."""
        return is_current_status(self.system_status)

    @property
    def home_address(self) -> IsamsAddress | None:
        """Return the first home address, the one that syncs."""
        return self.home_addresses[0] if self.home_addresses else None


class IsamsContact(_IsamsModel):
    """A pupil's contact as `GET /api/students/{schoolId}/contacts?expand=countryIsoMappings`
    returns it: one record per pupil and contact, the same person (`personGuid`) on several.
    """

    id: Text = None
    person_id: Text = None
    person_guid: Text = None
    contact_type: Text = None
    relationship: Text = None
    parental_responsibility: Flag = None
    title: Text = None
    forename: Text = None
    middle_names: Text = Field(
        default=None, validation_alias=AliasChoices("middleNames", "middlenames")
    )
    surname: Text = None
    email_address: Text = None
    mobile_number: Text = None
    telephone_number: Text = None
    work_telephone_number: Text = None
    address1: Text = None
    address2: Text = None
    address3: Text = None
    town: Text = None
    county: Text = None
    postcode: Text = None
    country: Text = None
    profession: Text = None
    student_home: Flag = None
    contact_only: Flag = None
    deceased: Flag = None
    last_updated: Moment = None
    country_iso_mappings: IsoMappings = ()


class IsamsEmployee(_IsamsModel):
    """A member of staff as `GET /api/humanresources/employees/{id}` returns it.

    iSAMS publishes no language field for staff; a `language` (one name, or a list) sent in a
    webhook record is read into `languages`. ManageBac+ access is not on this record: it
    reaches the sync as `managebacAccess` in staff events.
    """

    id: Text = None
    person_guid: Text = None
    title: Text = None
    forename: Text = None
    middle_names: Text = Field(
        default=None, validation_alias=AliasChoices("middleNames", "middlenames")
    )
    surname: Text = None
    preferred_name: Text = None
    school_initials: Text = None
    gender: Text = None
    date_of_birth: Day = None
    nationalities: Names = ()
    languages: Names = Field(default=(), validation_alias=AliasChoices("language", "languages"))
    school_email_address: Text = None
    personal_email_address: Text = None
    school_mobile_number: Text = None
    personal_mobile_number: Text = None
    school_telephone_number: Text = None
    personal_telephone_number: Text = None
    personal_address1: Text = None
    personal_address2: Text = None
    personal_address3: Text = None
    personal_town: Text = None
    personal_county: Text = None
    personal_postcode: Text = None
    personal_country: Text = None
    is_teaching_staff: Flag = None
    system_status: Text = None
    leaving_date: Day = None
    last_updated: Moment = None
    nationality_iso_mappings: IsoMappings = ()
    language_iso_mappings: IsoMappings = ()
    country_iso_mappings: IsoMappings = ()

    @property
    def is_current(self) -> bool:
        """Tell whether iSAMS counts the employee as still at the school (`Current`)."""
        return is_current_status(self.system_status)


def as_utc(moment: datetime) -> datetime:
    """Return an aware UTC date-time; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_moment(value: object) -> datetime | None:
    """Read an iSAMS or ledger timestamp (text or date-time) as aware UTC, or None."""
    moment = _moment(value)
    return as_utc(moment) if moment is not None else None


# A joint contact is two people on one record (docs/reference/isams-fields.md): the second
# person's ids and relationship are known fields; the names and e-mail of the second person
# are not published, and these names are assumed (one place, so easy to change).
JOINT_PERSON_FIELDS: dict[str, str] = {
    "secondaryPersonId": "personId",
    "secondaryPersonGuid": "personGuid",
    "relationshipOfJointContact": "relationship",
    "secondaryTitle": "title",
    "secondaryForename": "forename",
    "secondaryMiddleNames": "middleNames",
    "secondarySurname": "surname",
    "secondaryEmailAddress": "emailAddress",
    "secondaryMobileNumber": "mobileNumber",
}
SECOND_PERSON = "/2"  # suffix of the second person's contact id in the ledger


def second_person_id(contact_id: str) -> str:
    """Return the ledger id of a joint contact's second person."""
    return f"{contact_id}{SECOND_PERSON}"


def contact_people(contact_id: str, raw: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Return the people a contact record stands for: itself, and for a joint contact the
    second person too, as a record of their own (their ids, names, e-mail and the
    `relationshipOfJointContact`; the address, type and dates shared with the first).

    Each person then syncs as a parent of the student like any contact.
    """
    first = {key: value for key, value in raw.items() if key not in JOINT_PERSON_FIELDS}
    people = [(contact_id, first)]
    if raw.get("secondaryPersonGuid") or raw.get("secondaryPersonId"):
        second = dict(first)
        for joint, own in JOINT_PERSON_FIELDS.items():
            second[own] = raw.get(joint)
        people.append((second_person_id(contact_id), second))
    return people


# iSAMS gives a contact in two shapes: the paged list (`/api/students/contacts`) names the
# student and can carry the school's country ISO mapping; the student's own list has
# neither. They are the same contact: compared without those, and a mapping known from the
# paged list is kept when the other shape comes.
_SHAPE_ONLY = frozenset({"schoolId", "countryIsoMappings"})


def same_contact(first: Mapping[str, Any] | None, second: Mapping[str, Any] | None) -> bool:
    """Tell whether two contact records say the same, whichever endpoint gave each."""
    if first is None or second is None:
        return first is second
    return {k: v for k, v in first.items() if k not in _SHAPE_ONLY} == {
        k: v for k, v in second.items() if k not in _SHAPE_ONLY
    }


def with_known_mappings(
    record: Mapping[str, Any], known: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Return the contact record, with the country ISO mapping known before if it has none."""
    kept = dict(record)
    if "countryIsoMappings" not in kept and known is not None and "countryIsoMappings" in known:
        kept["countryIsoMappings"] = known["countryIsoMappings"]
    return kept
