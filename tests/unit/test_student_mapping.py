"""Students: every row of docs/design.md §3's students table and every precise-semantics bullet."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from consumers.domain.isams import IsamsStudent
from consumers.domain.plan import (
    Archive,
    Create,
    NoChange,
    Plan,
    PushedState,
    Skip,
    Unarchive,
    Update,
    content_hash,
    is_stale,
)
from consumers.domain.students import (
    DELETED,
    NOT_CURRENT,
    MappedStudent,
    StudentRules,
    map_student,
    parse_student,
    plan_student,
)

RULES = StudentRules(
    year_groups={7: 10209272, 8: 10209273}, placeholder_email_domain="placeholder.invalid"
)
TODAY = date(2026, 11, 28)
BASE: dict[str, Any] = {
    "id": 1001,
    "schoolId": "145629077495",
    "schoolCode": "AA1001",
    "personGuid": "6f1c",
    "title": "Miss",
    "forename": "Ada",
    "middlenames": "Mary",
    "surname": "Lovelace",
    "preferredName": "Addie",
    "fullName": "Ada Mary Lovelace",
    "dob": "2013-04-17T00:00:00",
    "gender": "F",
    "yearGroup": 7,
    "formGroup": "7L",
    "enrolmentDate": "2024-09-04T00:00:00",
    "schoolEmailAddress": "ada.lovelace@school.example",
    "personalEmailAddress": "ada@home.example",
    "mobileNumber": "07700 900123",
    "nationalities": ["British"],
    "languages": ["English"],
    "residentCountry": "United Kingdom",
    "homeAddresses": [
        {
            "id": 9,
            "address1": "1 High Street",
            "address2": "Flat 2",
            "address3": "Widcombe",
            "town": "Bath",
            "county": "Somerset",
            "postcode": "BA1 1AA",
            "country": "United Kingdom",
            "private": False,
        }
    ],
    "systemStatus": "Current",
    "leavingDate": None,
    "lastUpdated": "2026-11-28T10:00:00",
    "nationalityIsoMappings": [],
    "languageIsoMappings": [],
}
EXPECTED: dict[str, Any] = {
    "first_name": "Ada",
    "middle_name": "Mary",
    "last_name": "Lovelace",
    "nickname": "Addie",
    "birthday": "2013-04-17",
    "gender": "Female",
    "year_group_id": 10209272,
    "email": "ada.lovelace@school.example",
    "mobile_phone_number": "07700 900123",
    "nationalities": ["GB"],
    "languages": ["ENG"],
    "street_address": "1 High Street",
    "street_address_ii": "Flat 2",
    "city": "Bath",
    "state": "Somerset",
    "zipcode": "BA1 1AA",
    "identifier": "145629077495",
    "student_id": "AA1001",
}


def student(**changes: Any) -> IsamsStudent:
    return IsamsStudent.model_validate({**BASE, **changes})


def mapped(**changes: Any) -> MappedStudent:
    result = map_student(student(**changes), RULES)
    assert isinstance(result, MappedStudent), result
    return result


def plan(
    record: IsamsStudent | None,
    previous: PushedState | None = None,
    *,
    deleted: bool = False,
) -> Plan:
    return plan_student(record, RULES, previous, event_deleted=deleted, today=TODAY)


def synced(**overrides: Any) -> PushedState:
    """The state after the base student was created and is active in ManageBac+."""
    return PushedState(fields={**EXPECTED, **overrides}, archived=False, managebac_id=2063)


# --- Mapping: one row of the students table per case ---------------------------------------


def test_the_whole_record_maps_to_every_field_of_the_table() -> None:
    result = mapped()
    assert result.fields == EXPECTED
    assert result.create_only == {"attendance_start_date": "2024-09-04"}
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        # forename / middlenames / surname -> first_name / middle_name / last_name
        ({"forename": "  Grace "}, "first_name", "Grace"),
        ({"middlenames": "Brewster"}, "middle_name", "Brewster"),
        ({"surname": "Hopper"}, "last_name", "Hopper"),
        # preferredName -> nickname
        ({"preferredName": "Gracie"}, "nickname", "Gracie"),
        # dob -> birthday yyyy-mm-dd, whatever time iSAMS adds
        ({"dob": "2013-04-17"}, "birthday", "2013-04-17"),
        ({"dob": "2013-04-17T00:00:00"}, "birthday", "2013-04-17"),
        ({"dob": "2013-04-17T23:59:59.1234567+01:00"}, "birthday", "2013-04-17"),
        # gender M/F -> Male/Female
        ({"gender": "M"}, "gender", "Male"),
        ({"gender": "F"}, "gender", "Female"),
        ({"gender": "m"}, "gender", "Male"),
        # yearGroup -> year_group_id via mappings.year_groups
        ({"yearGroup": 8}, "year_group_id", 10209273),
        ({"yearGroup": "8"}, "year_group_id", 10209273),
        # schoolEmailAddress -> email
        ({"schoolEmailAddress": "grace@school.example"}, "email", "grace@school.example"),
        # mobileNumber -> mobile_phone_number
        ({"mobileNumber": "+44 7700 900999"}, "mobile_phone_number", "+44 7700 900999"),
        ({"mobileNumber": 7700900999}, "mobile_phone_number", "7700900999"),
        # nationalities -> ISO 3166 alpha-2, by name (adjectives count) or by mapping
        ({"nationalities": ["British", "French"]}, "nationalities", ["GB", "FR"]),
        ({"nationalities": "British"}, "nationalities", ["GB"]),
        (
            {
                "nationalities": ["Scottish"],
                "nationalityIsoMappings": [
                    {"iSAMSName": "Scottish", "isoCode2Char": "GB", "isoCode3Char": "GBR"}
                ],
            },
            "nationalities",
            ["GB"],
        ),
        # languages -> ISO 639-2 upper-case, by name or by mapping
        ({"languages": ["English", "German"]}, "languages", ["ENG", "DEU"]),
        (
            {
                "languages": ["Spanish (Latin American)"],
                "languageIsoMappings": [
                    {
                        "iSAMSName": "Spanish (Latin American)",
                        "isoCode2Char": "es",
                        "isoCode3Char": "spa",
                        "isoName": "Spanish",
                    }
                ],
            },
            "languages",
            ["SPA"],
        ),
        # homeAddresses[0] -> street_address, street_address_ii, city, state, zipcode
        ({"homeAddresses": [{"address1": "2 Low Road"}]}, "street_address", "2 Low Road"),
        ({"homeAddresses": [{"address2": "Annexe"}]}, "street_address_ii", "Annexe"),
        ({"homeAddresses": [{"town": "Wells"}]}, "city", "Wells"),
        ({"homeAddresses": [{"county": "Avon"}]}, "state", "Avon"),
        ({"homeAddresses": [{"postcode": "BA5 2PA"}]}, "zipcode", "BA5 2PA"),
        ({"homeAddresses": {"town": "Frome"}}, "city", "Frome"),
        (
            {"homeAddresses": [{"town": "First"}, {"town": "Second"}]},
            "city",
            "First",
        ),
        # schoolId -> identifier, schoolCode -> student_id
        ({"schoolId": 99}, "identifier", "99"),
        ({"schoolCode": "AB-7"}, "student_id", "AB-7"),
    ],
)
def test_each_row_of_the_students_table(changes: dict[str, Any], field: str, value: Any) -> None:
    assert mapped(**changes).fields[field] == value


@pytest.mark.parametrize(
    ("changes", "absent"),
    [
        ({"middlenames": None}, "middle_name"),
        ({"middlenames": ""}, "middle_name"),
        ({"middlenames": "   "}, "middle_name"),
        ({"preferredName": None}, "nickname"),
        ({"dob": None}, "birthday"),
        ({"dob": "0001-01-01T00:00:00"}, "birthday"),  # .NET's "no date"
        ({"dob": "not a date"}, "birthday"),
        ({"gender": None}, "gender"),
        ({"mobileNumber": None}, "mobile_phone_number"),
        ({"homeAddresses": []}, "street_address"),
        ({"homeAddresses": None}, "city"),
        ({"nationalities": []}, "nationalities"),
        ({"nationalities": None}, "nationalities"),
        ({"languages": ["Klingonese"]}, "languages"),
    ],
)
def test_empty_values_are_left_out(changes: dict[str, Any], absent: str) -> None:
    assert absent not in mapped(**changes).fields


def test_middle_names_spelt_as_on_contacts_are_read() -> None:
    raw = {k: v for k, v in BASE.items() if k != "middlenames"}
    record = IsamsStudent.model_validate({**raw, "middleNames": "Brewster"})
    result = map_student(record, RULES)
    assert isinstance(result, MappedStudent)
    assert result.fields["middle_name"] == "Brewster"


def test_students_country_is_not_synced() -> None:
    fields = mapped(residentCountry="France").fields
    assert "country" not in fields


def test_enrolment_date_is_only_for_creation() -> None:
    result = mapped(enrolmentDate="2024-09-04T08:30:00")
    assert "attendance_start_date" not in result.fields
    assert result.create_only == {"attendance_start_date": "2024-09-04"}
    assert mapped(enrolmentDate=None).create_only == {}


@pytest.mark.parametrize("gender", ["X", "U", "Other", "Non-binary"])
def test_other_genders_are_not_sent_and_warned(gender: str) -> None:
    result = mapped(gender=gender)
    assert "gender" not in result.fields
    assert result.warnings == ("gender: the iSAMS value is not M or F, so no gender was sent",)
    assert not any(gender in warning for warning in result.warnings)


def test_missing_email_gets_the_placeholder() -> None:
    result = mapped(schoolEmailAddress=None)
    assert result.fields["email"] == "AA1001@placeholder.invalid"
    assert result.warnings == (
        "schoolEmailAddress: empty in iSAMS; a placeholder address was sent until iSAMS has one",
    )


def test_invalid_email_gets_the_placeholder() -> None:
    result = mapped(schoolEmailAddress="n/a")
    assert result.fields["email"] == "AA1001@placeholder.invalid"
    assert "not a valid e-mail address" in result.warnings[0]


@pytest.mark.parametrize("email", [None, "n/a"])
@pytest.mark.parametrize("previous", [None, synced()], ids=["never-sent", "synced"])
def test_a_skipped_student_carries_no_placeholder_was_sent_warning(
    email: str | None, previous: PushedState | None
) -> None:
    """A pupil that is skipped was sent nothing, so explain must not say a placeholder was."""
    skipped = plan(student(schoolEmailAddress=email, yearGroup=5, surname=None), previous)
    assert skipped.skip is not None
    assert not any("placeholder" in warning for warning in skipped.warnings)
    written = plan(student(schoolEmailAddress=email))
    assert any("placeholder address was sent" in warning for warning in written.warnings)


def test_placeholder_local_part_is_made_safe() -> None:
    result = mapped(schoolEmailAddress=None, schoolCode="AB 12/3")
    assert result.fields["email"] == "AB-12-3@placeholder.invalid"


def test_unknown_nationalities_and_languages_are_dropped_with_warnings() -> None:
    result = mapped(nationalities=["British", "Martian"], languages=["Klingonese"])
    assert result.fields["nationalities"] == ["GB"]
    assert "languages" not in result.fields
    assert len(result.warnings) == 2
    assert result.warnings[0].startswith("nationalities: one iSAMS value has no ISO country code")
    assert result.warnings[1].startswith("languages: one iSAMS value has no ISO 639-2")
    assert not any("Martian" in w or "Klingonese" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"schoolCode": None}, "missing in iSAMS: schoolCode"),
        ({"forename": ""}, "missing in iSAMS: forename"),
        ({"surname": None, "forename": None}, "missing in iSAMS: forename, surname"),
        ({"yearGroup": None}, "missing in iSAMS: yearGroup"),
        ({"yearGroup": "Year 7"}, "missing in iSAMS: yearGroup"),
        ({"yearGroup": 12}, "yearGroup 12 is not in mappings.year_groups"),
        (
            {"schoolCode": None, "yearGroup": 12},
            "missing in iSAMS: schoolCode; yearGroup 12 is not in mappings.year_groups",
        ),
    ],
)
def test_creation_needs_code_names_and_a_mapped_year_group(
    changes: dict[str, Any], reason: str
) -> None:
    assert map_student(student(**changes), RULES) == Skip(reason)
    assert plan(student(**changes)).actions == (Skip(reason),)


# --- Parsing: lenient, but a record must name itself ---------------------------------------


def test_parse_is_lenient_about_odd_shapes() -> None:
    record = parse_student(
        {
            "schoolId": 145629077495,
            "schoolCode": 1001,
            "forename": "Ada",
            "surname": "Lovelace",
            "yearGroup": "7.0",
            "gender": True,
            "dob": 20130417,
            "nationalities": [{"name": "British"}, None, 3],
            "languages": None,
            "homeAddresses": "1 High Street",
            "nationalityIsoMappings": {"iSAMSName": "British", "isoCode2Char": "GB"},
            "languageIsoMappings": ["junk"],
            "systemStatus": "current",
            "unknownField": {"nested": True},
        }
    )
    assert isinstance(record, IsamsStudent)
    assert record.school_id == "145629077495"
    assert record.school_code == "1001"
    assert record.year_group == 7
    assert record.gender is None
    assert record.dob is None
    assert record.nationalities == ("British", "3")
    assert record.languages == ()
    assert record.home_addresses == ()
    assert len(record.nationality_iso_mappings) == 1
    assert record.language_iso_mappings == ()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ([], "iSAMS record is unreadable: not a JSON object"),
        ({"forename": "Ada"}, "iSAMS record is unreadable: schoolId"),
        ({"schoolId": "  "}, "iSAMS record is unreadable: schoolId"),
        ({"schoolId": None}, "iSAMS record is unreadable: schoolId"),
    ],
)
def test_unreadable_records_are_skipped_naming_the_field(raw: Any, reason: str) -> None:
    assert parse_student(raw) == Skip(reason)


# --- Plans: precise semantics --------------------------------------------------------------


@pytest.mark.parametrize("status", ["Current", "current", "CURRENT", " Current ", "1"])
def test_current_is_case_insensitive(status: str) -> None:
    assert isinstance(plan(student(systemStatus=status)).actions[0], Create)


@pytest.mark.parametrize("status", ["Left", "Applicant", "Former", None, "", "Currently"])
def test_anything_else_is_not_current(status: str | None) -> None:
    result = plan(student(systemStatus=status))
    assert result.actions == (Skip(NOT_CURRENT),)
    assert result.state is None


def test_new_student_is_created_without_empty_values() -> None:
    result = plan(student(middlenames=None, mobileNumber="", homeAddresses=[]))
    (create,) = result.actions
    assert isinstance(create, Create)
    expected = {
        k: v
        for k, v in EXPECTED.items()
        if k
        not in {
            "middle_name",
            "mobile_phone_number",
            "street_address",
            "street_address_ii",
            "city",
            "state",
            "zipcode",
        }
    }
    assert create.payload == expected
    assert create.body() == {**expected, "attendance_start_date": "2024-09-04"}
    assert result.state == PushedState(fields=expected)
    assert result.skip is None
    assert result.writes == (create,)


def test_adopting_an_existing_managebac_student_never_sends_attendance_start_date() -> None:
    (create,) = plan(student()).actions
    assert isinstance(create, Create)
    assert create.adopt() == Update(changes=EXPECTED)


def test_unchanged_student_needs_no_write() -> None:
    result = plan(student(), synced())
    assert result.actions == (NoChange(),)
    assert result.writes == ()
    assert result.state == synced()


def test_update_sends_only_changed_fields() -> None:
    result = plan(student(mobileNumber="07700 900999", yearGroup=8), synced())
    assert result.actions == (
        Update(changes={"mobile_phone_number": "07700 900999", "year_group_id": 10209273}),
    )
    assert result.state is not None
    assert result.state.fields["mobile_phone_number"] == "07700 900999"
    assert result.state.managebac_id == 2063


def test_update_clears_fields_that_isams_emptied() -> None:
    result = plan(
        student(middlenames=None, nationalities=[], languages=["Klingonese"], homeAddresses=[]),
        synced(),
    )
    assert result.actions == (
        Update(
            changes={
                "middle_name": "",
                "nationalities": [],
                "languages": [],
                "street_address": "",
                "street_address_ii": "",
                "city": "",
                "state": "",
                "zipcode": "",
            }
        ),
    )
    assert result.state is not None
    assert "middle_name" not in result.state.fields


def test_other_gender_after_male_clears_it() -> None:
    result = plan(student(gender="X"), synced())
    assert result.actions == (Update(changes={"gender": ""}),)
    assert result.warnings == ("gender: the iSAMS value is not M or F, so no gender was sent",)


def test_update_never_sends_attendance_start_date() -> None:
    result = plan(student(enrolmentDate="2025-01-06"), synced())
    assert result.actions == (NoChange(),)


def test_placeholder_email_is_replaced_once_isams_has_one() -> None:
    first = plan(student(schoolEmailAddress=None))
    assert first.state is not None
    assert first.state.fields["email"] == "AA1001@placeholder.invalid"
    later = plan(student(), PushedState(first.state.fields, managebac_id=7))
    assert later.actions == (Update(changes={"email": "ada.lovelace@school.example"}),)


def test_not_current_any_more_archives_with_the_leaving_date() -> None:
    result = plan(student(systemStatus="Left", leavingDate="2026-07-17T00:00:00"), synced())
    assert result.actions == (Archive(withdrawn_on=date(2026, 7, 17)),)
    assert result.state == PushedState(fields=EXPECTED, archived=True, managebac_id=2063)


def test_archive_without_leaving_date_uses_today() -> None:
    result = plan(student(systemStatus="Left"), synced())
    assert result.actions == (Archive(withdrawn_on=TODAY),)


def test_deleted_event_archives() -> None:
    result = plan(student(leavingDate="2026-11-01"), synced(), deleted=True)
    assert result.actions == (Archive(withdrawn_on=date(2026, 11, 1)),)


def test_record_gone_from_isams_archives_today() -> None:
    assert plan(None, synced()).actions == (Archive(withdrawn_on=TODAY),)


@pytest.mark.parametrize("deleted", [True, False])
def test_leaving_when_never_synced_is_a_skip(deleted: bool) -> None:
    result = plan(student(systemStatus="Left"), None, deleted=deleted)
    assert result.actions == (Skip(DELETED if deleted else NOT_CURRENT),)
    assert plan(None, None).actions == (Skip(DELETED),)


def test_leaving_when_already_archived_is_a_skip() -> None:
    archived = PushedState(EXPECTED, archived=True, managebac_id=2063)
    result = plan(student(systemStatus="Left"), archived)
    assert result.actions == (Skip(NOT_CURRENT),)
    assert result.state == archived


def test_current_again_unarchives_and_rewrites_everything() -> None:
    archived = PushedState(
        {**EXPECTED, "nickname": "Old", "middle_name": "Gone"}, archived=True, managebac_id=2063
    )
    result = plan(student(middlenames=None), archived)
    rewrite = {k: v for k, v in EXPECTED.items() if k != "middle_name"}
    assert result.actions == (Unarchive(), Update(changes={**rewrite, "middle_name": ""}))
    assert "year_group_id" in rewrite
    assert result.state == PushedState(rewrite, archived=False, managebac_id=2063)


def test_current_again_without_a_mapped_year_group_stays_archived() -> None:
    archived = PushedState(EXPECTED, archived=True, managebac_id=2063)
    result = plan(student(yearGroup=12), archived)
    assert result.actions == (Skip("yearGroup 12 is not in mappings.year_groups"),)
    assert result.state == archived


def test_synced_student_whose_year_group_is_unmapped_keeps_it_and_warns() -> None:
    result = plan(student(yearGroup=12, mobileNumber="07700 900999"), synced())
    assert result.actions == (Update(changes={"mobile_phone_number": "07700 900999"}),)
    assert result.warnings == (
        "yearGroup 12 is not in mappings.year_groups; the ManageBac+ year group was left unchanged",
    )
    assert result.state is not None
    assert result.state.fields["year_group_id"] == 10209272


def test_synced_student_whose_year_group_is_empty_keeps_it() -> None:
    result = plan(student(yearGroup=None), synced())
    assert result.actions == (NoChange(),)
    assert result.warnings[0].startswith("yearGroup is empty in iSAMS")


def test_synced_student_losing_a_required_name_is_skipped_not_cleared() -> None:
    result = plan(student(surname=None), synced())
    assert result.actions == (Skip("missing in iSAMS: surname"),)
    assert result.state == synced()


def test_warnings_carry_no_personal_values() -> None:
    result = plan(
        student(
            gender="Zed",
            nationalities=["Zorgian"],
            languages=["Zorgish"],
            schoolEmailAddress="zorg-at-home",
        )
    )
    text = " ".join(result.warnings)
    assert len(result.warnings) == 4
    for value in ("Zed", "Zorgian", "Zorgish", "zorg-at-home", "Ada", "Lovelace"):
        assert value not in text


# --- Ledger helpers ------------------------------------------------------------------------


def test_content_hash_is_stable_and_ignores_key_order() -> None:
    reordered = dict(reversed(list(EXPECTED.items())))
    assert content_hash(EXPECTED) == content_hash(reordered)
    assert len(content_hash(EXPECTED)) == 64
    assert content_hash(EXPECTED) != content_hash({**EXPECTED, "nickname": "Ace"})
    assert content_hash({}) == content_hash({})


@pytest.mark.parametrize(
    ("record", "applied", "stale"),
    [
        (datetime(2026, 11, 28, 9), datetime(2026, 11, 28, 10), True),
        (datetime(2026, 11, 28, 10), datetime(2026, 11, 28, 10), False),
        (datetime(2026, 11, 28, 11), datetime(2026, 11, 28, 10), False),
        (None, datetime(2026, 11, 28, 10), False),
        (datetime(2026, 11, 28, 9), None, False),
        ("2026-11-28T09:00:00", "2026-11-28T10:00:00", True),
        ("2026-11-28T09:00:00", datetime(2026, 11, 28, 10, tzinfo=UTC), True),
        (
            datetime(2026, 11, 28, 10, 30, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-28T10:00:00Z",
            True,
        ),
        ("garbage", "2026-11-28T10:00:00", False),
    ],
)
def test_is_stale(
    record: datetime | str | None, applied: datetime | str | None, stale: bool
) -> None:
    assert is_stale(record, applied) is stale


def test_last_updated_is_parsed_for_staleness() -> None:
    record = student(lastUpdated="2026-11-28T09:00:00.1234567")
    assert record.last_updated is not None
    assert is_stale(record.last_updated, "2026-11-28T10:00:00") is True
