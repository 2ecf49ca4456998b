"""Teachers: each field of docs/design.md §3's teachers paragraph, each staff precise rule."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.domain.fields import GENDER_NOT_SENT
from consumers.domain.isams import IsamsEmployee
from consumers.domain.plan import (
    Archive,
    Create,
    NoChange,
    Plan,
    PushedState,
    Skip,
    Unarchive,
    Update,
)
from consumers.domain.teachers import (
    ACCESS_REVOKED,
    ACCESS_REVOKED_IGNORED,
    ACCESS_UNKNOWN,
    DELETED,
    LEFT,
    NO_ACCESS,
    STAFF_DISABLED,
    MappedTeacher,
    TeacherRules,
    map_teacher,
    parse_employee,
    plan_teacher,
)

ARCHIVE = TeacherRules(enabled=True, on_access_revoked="archive")
IGNORE = TeacherRules(enabled=True, on_access_revoked="ignore")
DISABLED = TeacherRules(enabled=False, on_access_revoked="archive")
BASE: dict[str, Any] = {
    "id": 42,
    "personGuid": "C0FFEE00-0000-4000-8000-000000000042",
    "title": "Dr",
    "forename": "Charles",
    "middleNames": "Babbage",
    "surname": "Babbage",
    "preferredName": "Charlie",
    "schoolInitials": "CB",
    "gender": "M",
    "dateOfBirth": "1971-12-26T00:00:00",
    "nationalities": ["British"],
    "language": "English",
    "schoolEmailAddress": "c.babbage@school.example",
    "personalEmailAddress": "charles@home.example",
    "schoolMobileNumber": "07700 900001",
    "personalMobileNumber": "07700 900002",
    "schoolTelephoneNumber": "01225 000001",
    "personalTelephoneNumber": "01225 000002",
    "personalAddress1": "1 Dorset Street",
    "personalAddress2": "Marylebone",
    "personalAddress3": "Westminster",
    "personalTown": "London",
    "personalCounty": "Greater London",
    "personalPostcode": "W1U 4EF",
    "personalCountry": "United Kingdom",
    "isTeachingStaff": True,
    "systemStatus": "Current",
    "leavingDate": None,
}
EXPECTED: dict[str, Any] = {
    "first_name": "Charles",
    "last_name": "Babbage",
    "nickname": "Charlie",
    "gender": "Male",
    "email": "c.babbage@school.example",
    "birthday": "1971-12-26",
    "languages": ["ENG"],
    "nationalities": ["GB"],
    "phone_number": "01225 000002",
    "mobile_phone_number": "07700 900001",
    "street_address": "1 Dorset Street",
    "street_address_ii": "Marylebone",
    "city": "London",
    "state": "Greater London",
    "zipcode": "W1U 4EF",
    "country": "GB",
}


def employee(**changes: Any) -> IsamsEmployee:
    return IsamsEmployee.model_validate({**BASE, **changes})


def mapped(**changes: Any) -> MappedTeacher:
    result = map_teacher(employee(**changes))
    assert isinstance(result, MappedTeacher), result
    return result


def plan(
    record: IsamsEmployee | None,
    previous: PushedState | None = None,
    *,
    access: bool | None = True,
    rules: TeacherRules = ARCHIVE,
    deleted: bool = False,
) -> Plan:
    return plan_teacher(record, access, rules, previous, event_deleted=deleted)


def synced(**overrides: Any) -> PushedState:
    """The state after the base teacher was created and is active in ManageBac+."""
    return PushedState(fields={**EXPECTED, **overrides}, archived=False, managebac_id=4040)


def archived() -> PushedState:
    return PushedState(fields=dict(EXPECTED), archived=True, managebac_id=4040)


# --- Mapping: each field of the teachers paragraph -----------------------------------------


def test_the_whole_employee_maps_to_every_teacher_field() -> None:
    result = mapped()
    assert result.fields == EXPECTED
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        # forename, surname
        ({"forename": " Ada "}, "first_name", "Ada"),
        ({"surname": "Lovelace"}, "last_name", "Lovelace"),
        # preferredName -> nickname
        ({"preferredName": "Chas"}, "nickname", "Chas"),
        # gender (same rule as students)
        ({"gender": "F"}, "gender", "Female"),
        ({"gender": "m"}, "gender", "Male"),
        ({"gender": "Female"}, "gender", "Female"),
        # schoolEmailAddress -> email
        ({"schoolEmailAddress": "CB@School.Example"}, "email", "CB@School.Example"),
        # dateOfBirth -> birthday, date only
        ({"dateOfBirth": "1971-12-26"}, "birthday", "1971-12-26"),
        ({"dateOfBirth": "1971-12-26T23:59:59+01:00"}, "birthday", "1971-12-26"),
        # a single language -> a one-element languages list (ISO 639-2 upper-case)
        ({"language": "German"}, "languages", ["DEU"]),
        ({"language": "french"}, "languages", ["FRA"]),
        ({"language": ["Spanish", "English"]}, "languages", ["SPA", "ENG"]),
        (
            {
                "language": "Spanish (Latin American)",
                "languageIsoMappings": [
                    {"iSAMSName": "Spanish (Latin American)", "isoCode3Char": "spa"}
                ],
            },
            "languages",
            ["SPA"],
        ),
        # nationalities (ISO alpha-2 like students, adjectives count)
        ({"nationalities": ["French", "Scottish"]}, "nationalities", ["FR", "GB"]),
        ({"nationalities": "Irish"}, "nationalities", ["IE"]),
        (
            {
                "nationalities": ["Cornish"],
                "nationalityIsoMappings": [{"iSAMSName": "Cornish", "isoCode2Char": "GB"}],
            },
            "nationalities",
            ["GB"],
        ),
        # personalTelephoneNumber -> phone_number
        ({"personalTelephoneNumber": "01225 999999"}, "phone_number", "01225 999999"),
        # schoolMobileNumber, else personalMobileNumber -> mobile_phone_number
        ({"schoolMobileNumber": "07700 111111"}, "mobile_phone_number", "07700 111111"),
        ({"schoolMobileNumber": None}, "mobile_phone_number", "07700 900002"),
        ({"schoolMobileNumber": "  "}, "mobile_phone_number", "07700 900002"),
        # personal address -> street_address, street_address_ii, city, state, zipcode
        ({"personalAddress1": "2 Low Road"}, "street_address", "2 Low Road"),
        ({"personalAddress2": "Annexe"}, "street_address_ii", "Annexe"),
        ({"personalTown": "Wells"}, "city", "Wells"),
        ({"personalCounty": "Avon"}, "state", "Avon"),
        ({"personalPostcode": "BA5 2PA"}, "zipcode", "BA5 2PA"),
        # personalCountry -> ISO alpha-2, by mapping or by name
        ({"personalCountry": "Germany"}, "country", "DE"),
        (
            {
                "personalCountry": "Wales",
                "countryIsoMappings": [{"iSAMSName": "Wales", "isoCode2Char": "GB"}],
            },
            "country",
            "GB",
        ),
    ],
)
def test_each_teacher_field(changes: dict[str, Any], field: str, value: Any) -> None:
    assert mapped(**changes).fields[field] == value


def test_languages_spelt_as_a_list_are_read_too() -> None:
    raw = {k: v for k, v in BASE.items() if k != "language"}
    result = map_teacher(IsamsEmployee.model_validate({**raw, "languages": ["Welsh"]}))
    assert isinstance(result, MappedTeacher)
    assert result.fields["languages"] == ["CYM"]


@pytest.mark.parametrize(
    ("changes", "absent"),
    [
        ({"forename": None}, "first_name"),
        ({"preferredName": ""}, "nickname"),
        ({"gender": None}, "gender"),
        ({"dateOfBirth": None}, "birthday"),
        ({"dateOfBirth": "0001-01-01T00:00:00"}, "birthday"),
        ({"language": None}, "languages"),
        ({"nationalities": []}, "nationalities"),
        ({"personalTelephoneNumber": None}, "phone_number"),
        ({"schoolMobileNumber": None, "personalMobileNumber": None}, "mobile_phone_number"),
        ({"personalAddress1": None}, "street_address"),
        ({"personalAddress2": None}, "street_address_ii"),
        ({"personalTown": None}, "city"),
        ({"personalCounty": None}, "state"),
        ({"personalPostcode": None}, "zipcode"),
        ({"personalCountry": None}, "country"),
    ],
)
def test_empty_values_are_left_out(changes: dict[str, Any], absent: str) -> None:
    assert absent not in mapped(**changes).fields


def test_fields_not_in_the_teachers_paragraph_are_not_sent() -> None:
    fields = mapped().fields
    for name in ("middle_name", "identifier", "salutation", "title"):
        assert name not in fields
    # the school telephone and personal e-mail are not teacher fields
    assert "01225 000001" not in fields.values()
    assert "charles@home.example" not in fields.values()


@pytest.mark.parametrize("gender", ["X", "U", "Other"])
def test_other_genders_are_not_sent_and_warned(gender: str) -> None:
    result = mapped(gender=gender)
    assert "gender" not in result.fields
    assert result.warnings == (GENDER_NOT_SENT,)


def test_unknown_iso_values_are_dropped_with_warnings_naming_the_field() -> None:
    result = mapped(language="Klingonese", nationalities=["Martian"], personalCountry="Atlantis")
    for name in ("languages", "nationalities", "country"):
        assert name not in result.fields
    assert [w.split(":")[0] for w in result.warnings] == [
        "personalCountry",
        "nationalities",
        "language",
    ]
    text = " ".join(result.warnings)
    for value in ("Klingonese", "Martian", "Atlantis"):
        assert value not in text


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"schoolEmailAddress": None}, "missing in iSAMS: schoolEmailAddress"),
        ({"schoolEmailAddress": "  "}, "missing in iSAMS: schoolEmailAddress"),
        ({"schoolEmailAddress": "cb"}, "not a valid e-mail address in iSAMS: schoolEmailAddress"),
        ({"surname": None}, "missing in iSAMS: surname"),
        (
            {"surname": None, "schoolEmailAddress": None},
            "missing in iSAMS: surname, schoolEmailAddress",
        ),
    ],
)
def test_school_email_and_surname_are_required(changes: dict[str, Any], reason: str) -> None:
    assert map_teacher(employee(**changes)) == Skip(reason)
    assert plan(employee(**changes)).actions == (Skip(reason),)


def test_personal_email_never_stands_in_for_the_school_one() -> None:
    result = map_teacher(employee(schoolEmailAddress=None))
    assert result == Skip("missing in iSAMS: schoolEmailAddress")


# --- Parsing -------------------------------------------------------------------------------


def test_parse_is_lenient_about_odd_shapes() -> None:
    record = parse_employee(
        {
            "id": 42,
            "surname": "Babbage",
            "gender": False,
            "dateOfBirth": "26/12/1971",
            "language": [{"name": "English"}, None],
            "nationalities": None,
            "isTeachingStaff": "false",
            "systemStatus": 1,
            "personalCountry": ["UK"],
            "countryIsoMappings": [{"iSAMSName": "UK", "isoCode2Char": "GB"}, "junk"],
        }
    )
    assert isinstance(record, IsamsEmployee)
    assert record.id == "42"
    assert record.gender is None
    assert record.date_of_birth is None
    assert record.languages == ("English",)
    assert record.nationalities == ()
    assert record.is_teaching_staff is False
    assert record.is_current is True
    assert record.personal_country is None
    assert len(record.country_iso_mappings) == 1


@pytest.mark.parametrize("raw", [[], "employee", None])
def test_non_objects_are_unreadable(raw: Any) -> None:
    assert parse_employee(raw) == Skip("iSAMS record is unreadable: not a JSON object")


# --- Plans: precise semantics --------------------------------------------------------------


def test_new_teacher_with_access_is_created() -> None:
    result = plan(employee())
    assert result.actions == (Create(payload=EXPECTED),)
    assert result.state == PushedState(EXPECTED)


def test_unchanged_teacher_needs_no_write() -> None:
    result = plan(employee(), synced())
    assert result.actions == (NoChange(),)
    assert result.state == synced()


def test_update_sends_only_changed_fields_and_clears_emptied_ones() -> None:
    result = plan(
        employee(schoolMobileNumber=None, personalMobileNumber=None, preferredName="Chas"),
        synced(),
    )
    assert result.actions == (Update(changes={"nickname": "Chas", "mobile_phone_number": ""}),)
    assert result.state is not None
    assert result.state.managebac_id == 4040


def test_email_change_is_an_update_of_the_linked_teacher() -> None:
    result = plan(employee(schoolEmailAddress="charles.babbage@school.example"), synced())
    assert result.actions == (Update(changes={"email": "charles.babbage@school.example"}),)


@pytest.mark.parametrize("rules", [ARCHIVE, IGNORE])
@pytest.mark.parametrize(
    ("changes", "deleted", "gone", "reason"),
    [
        ({"systemStatus": "Left"}, False, False, LEFT),
        ({"systemStatus": None}, False, False, LEFT),
        ({"systemStatus": "Former"}, False, False, LEFT),
        ({}, True, False, DELETED),
        ({}, False, True, DELETED),
    ],
)
@pytest.mark.parametrize("access", [True, False, None])
def test_leaving_always_archives(
    rules: TeacherRules,
    changes: dict[str, Any],
    deleted: bool,
    gone: bool,
    reason: str,
    access: bool | None,
) -> None:
    record = None if gone else employee(**changes)
    result = plan(record, synced(), access=access, rules=rules, deleted=deleted)
    assert result.actions == (Archive(),)
    assert result.state == PushedState(EXPECTED, archived=True, managebac_id=4040)
    again = plan(record, result.state, access=access, rules=rules, deleted=deleted)
    assert again.actions == (Skip(reason),)


def test_teacher_archive_takes_no_body() -> None:
    (archive,) = plan(employee(systemStatus="Left"), synced()).actions
    assert isinstance(archive, Archive)
    assert archive.body() == {}


@pytest.mark.parametrize("status", ["Current", "current", "CURRENT", "1", " Current "])
def test_current_is_case_insensitive(status: str) -> None:
    assert isinstance(plan(employee(systemStatus=status)).actions[0], Create)


def test_leaving_when_never_synced_is_a_skip() -> None:
    assert plan(employee(systemStatus="Left")).actions == (Skip(LEFT),)
    assert plan(None).actions == (Skip(DELETED),)


def test_access_revoked_archives() -> None:
    result = plan(employee(), synced(), access=False, rules=ARCHIVE)
    assert result.actions == (Archive(),)
    assert result.state == PushedState(EXPECTED, archived=True, managebac_id=4040)
    again = plan(employee(), result.state, access=False, rules=ARCHIVE)
    assert again.actions == (Skip(ACCESS_REVOKED),)


def test_access_revoked_with_ignore_keeps_the_teacher_and_the_link() -> None:
    result = plan(employee(preferredName="Chas"), synced(), access=False, rules=IGNORE)
    assert result.actions == (Skip(ACCESS_REVOKED_IGNORED),)
    assert result.state == synced()
    assert result.writes == ()


@pytest.mark.parametrize("rules", [ARCHIVE, IGNORE])
def test_no_access_and_never_synced_is_a_skip(rules: TeacherRules) -> None:
    result = plan(employee(), None, access=False, rules=rules)
    assert result.actions == (Skip(NO_ACCESS),)
    assert result.state is None


@pytest.mark.parametrize("previous", [None, "synced", "archived"])
def test_access_unknown_is_not_synced(previous: str | None) -> None:
    state = {"synced": synced(), "archived": archived(), None: None}[previous]
    result = plan(employee(), state, access=None)
    assert result.actions == (Skip(ACCESS_UNKNOWN),)
    assert result.state == state


@pytest.mark.parametrize("access", [True, False, None])
@pytest.mark.parametrize("previous", [None, "synced"])
def test_staff_disabled_is_a_skip(access: bool | None, previous: str | None) -> None:
    state = synced() if previous else None
    result = plan(employee(), state, access=access, rules=DISABLED)
    assert result.actions == (Skip(STAFF_DISABLED),)
    assert result.state == state
    assert plan(employee(systemStatus="Left"), state, rules=DISABLED).actions == (
        Skip(STAFF_DISABLED),
    )


def test_access_granted_again_unarchives_and_rewrites_everything() -> None:
    before = PushedState(
        {**EXPECTED, "nickname": "Old", "phone_number": "01225 000000"},
        archived=True,
        managebac_id=4040,
    )
    result = plan(employee(personalTelephoneNumber=None), before, access=True)
    rewrite = {k: v for k, v in EXPECTED.items() if k != "phone_number"}
    assert result.actions == (Unarchive(), Update(changes={**rewrite, "phone_number": ""}))
    assert result.state == PushedState(rewrite, archived=False, managebac_id=4040)


def test_a_return_unarchives_and_rewrites_everything() -> None:
    left = plan(employee(systemStatus="Left"), synced())
    back = plan(employee(systemStatus="Current"), left.state)
    assert back.actions == (Unarchive(), Update(changes=EXPECTED))
    assert back.state == synced()


def test_archived_teacher_missing_a_required_field_stays_archived() -> None:
    result = plan(employee(schoolEmailAddress=None), archived())
    assert result.actions == (Skip("missing in iSAMS: schoolEmailAddress"),)
    assert result.state == archived()


def test_synced_teacher_losing_the_email_is_skipped_not_cleared() -> None:
    result = plan(employee(schoolEmailAddress=None), synced())
    assert result.actions == (Skip("missing in iSAMS: schoolEmailAddress"),)
    assert result.state == synced()


def test_warnings_carry_no_personal_values() -> None:
    result = plan(employee(gender="Zed", language="Zorgish", nationalities=["Zorgian"]))
    text = " ".join(result.warnings)
    assert len(result.warnings) == 3
    for value in ("Zed", "Zorgish", "Zorgian", "Charles", "Babbage"):
        assert value not in text
