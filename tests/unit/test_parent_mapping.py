"""Parents: each field of docs/design.md §3's parents paragraph, each parent precise rule."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.domain.isams import IsamsContact
from consumers.domain.parents import (
    DECEASED,
    NO_ACTIVE_CHILD,
    NO_CONTACT,
    NO_PERSON,
    SALUTATION_NOT_SENT,
    MappedParent,
    ParentRules,
    contact_syncs,
    email_key,
    map_parent,
    parse_contact,
    person_key,
    plan_parent,
    representative_contact,
)
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

RULES = ParentRules.from_settings(["Parents", "Guardian"], {})
BASE: dict[str, Any] = {
    "id": 501,
    "personId": 88001,
    "personGuid": "9B2E4C1A-0000-4000-8000-000000000001",
    "contactType": "Parents",
    "relationship": "Mother",
    "parentalResponsibility": True,
    "title": "Mrs",
    "forename": "Anne",
    "middleNames": "Isabella",
    "surname": "Milbanke",
    "emailAddress": "anne.milbanke@home.example",
    "mobileNumber": "07700 900456",
    "telephoneNumber": "01225 000111",
    "workTelephoneNumber": "020 7946 0000",
    "address1": "1 High Street",
    "address2": "Flat 2",
    "address3": "Widcombe",
    "town": "Bath",
    "county": "Somerset",
    "postcode": "BA1 1AA",
    "country": "United Kingdom",
    "profession": "Mathematician",
    "studentHome": True,
    "contactOnly": False,
    "deceased": False,
    "lastUpdated": "2026-11-28T10:00:00",
    "countryIsoMappings": [],
}
EXPECTED: dict[str, Any] = {
    "salutation": "Mrs.",
    "first_name": "Anne",
    "last_name": "Milbanke",
    "email": "anne.milbanke@home.example",
    "title": "Mathematician",
    "mobile_phone_number": "07700 900456",
    "phone_number": "01225 000111",
    "street_address": "1 High Street",
    "street_address_ii": "Flat 2",
    "city": "Bath",
    "state": "Somerset",
    "zipcode": "BA1 1AA",
    "country": "GB",
}


def contact(**changes: Any) -> IsamsContact:
    return IsamsContact.model_validate({**BASE, **changes})


def mapped(**changes: Any) -> MappedParent:
    result = map_parent(contact(**changes), RULES)
    assert isinstance(result, MappedParent), result
    return result


def plan(
    record: IsamsContact | None,
    previous: PushedState | None = None,
    *,
    active: bool = True,
    rules: ParentRules = RULES,
) -> Plan:
    return plan_parent(record, rules, previous, has_active_child=active)


def synced(**overrides: Any) -> PushedState:
    """The state after the base parent was created and is active in ManageBac+."""
    return PushedState(fields={**EXPECTED, **overrides}, archived=False, managebac_id=3031)


def archived() -> PushedState:
    return PushedState(fields=dict(EXPECTED), archived=True, managebac_id=3031)


# --- Mapping: each field of the parents paragraph ------------------------------------------


def test_the_whole_contact_maps_to_every_parent_field() -> None:
    result = mapped()
    assert result.fields == EXPECTED
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        # forename / surname -> first_name / last_name
        ({"forename": "  Ada "}, "first_name", "Ada"),
        ({"surname": "Byron"}, "last_name", "Byron"),
        # emailAddress -> email (sent as iSAMS spells it)
        ({"emailAddress": "Anne.M@Home.Example"}, "email", "Anne.M@Home.Example"),
        # profession -> title (job title)
        ({"profession": "Poet"}, "title", "Poet"),
        # mobileNumber -> mobile_phone_number, telephoneNumber -> phone_number
        ({"mobileNumber": "+44 7700 900999"}, "mobile_phone_number", "+44 7700 900999"),
        ({"mobileNumber": 7700900999}, "mobile_phone_number", "7700900999"),
        ({"telephoneNumber": "01225 999999"}, "phone_number", "01225 999999"),
        # address1 / address2 / town / county / postcode
        ({"address1": "2 Low Road"}, "street_address", "2 Low Road"),
        ({"address2": "Annexe"}, "street_address_ii", "Annexe"),
        ({"town": "Wells"}, "city", "Wells"),
        ({"county": "Avon"}, "state", "Avon"),
        ({"postcode": "BA5 2PA"}, "zipcode", "BA5 2PA"),
        # country -> ISO alpha-2, by name (any case, adjectives and alpha-3 too)
        ({"country": "France"}, "country", "FR"),
        ({"country": "united kingdom"}, "country", "GB"),
        ({"country": "USA"}, "country", "US"),
        # ... and from the school's countryIsoMappings first
        (
            {
                "country": "Scotland",
                "countryIsoMappings": [
                    {"iSAMSName": "Scotland", "isoCode2Char": "GB", "isoCode3Char": "GBR"}
                ],
            },
            "country",
            "GB",
        ),
        (
            {
                "country": "Kosovo",
                "countryIsoMappings": {"iSAMSName": "kosovo", "isoCode2Char": "xk"},
            },
            "country",
            "XK",
        ),
        (
            {
                "country": "Holland",
                "countryIsoMappings": [{"iSAMSName": "Holland", "isoCode3Char": "NLD"}],
            },
            "country",
            "NL",
        ),
    ],
)
def test_each_parent_field(changes: dict[str, Any], field: str, value: Any) -> None:
    assert mapped(**changes).fields[field] == value


@pytest.mark.parametrize(
    ("title", "salutation"),
    [
        ("Mr", "Mr."),
        ("Mr.", "Mr."),
        ("MR", "Mr."),
        ("mr.", "Mr."),
        (" Mr ", "Mr."),
        ("Mrs", "Mrs."),
        ("mrs.", "Mrs."),
        ("Ms", "Ms."),
        ("Ms.", "Ms."),
        ("Miss", "Ms."),
        ("MISS", "Ms."),
        ("Dr", "Dr."),
        ("dr.", "Dr."),
    ],
)
def test_title_becomes_salutation(title: str, salutation: str) -> None:
    result = mapped(title=title)
    assert result.fields["salutation"] == salutation
    assert result.warnings == ()


@pytest.mark.parametrize("title", ["Prof", "Rev", "Sir", "Mx", "Lady", "Mr & Mrs", "Master"])
def test_other_titles_send_no_salutation_and_warn(title: str) -> None:
    result = mapped(title=title)
    assert "salutation" not in result.fields
    assert result.warnings == (SALUTATION_NOT_SENT,)
    assert title not in SALUTATION_NOT_SENT


@pytest.mark.parametrize(
    ("changes", "absent"),
    [
        ({"title": None}, "salutation"),
        ({"title": ""}, "salutation"),
        ({"forename": None}, "first_name"),
        ({"profession": "  "}, "title"),
        ({"mobileNumber": None}, "mobile_phone_number"),
        ({"telephoneNumber": ""}, "phone_number"),
        ({"address1": None}, "street_address"),
        ({"address2": None}, "street_address_ii"),
        ({"town": None}, "city"),
        ({"county": None}, "state"),
        ({"postcode": None}, "zipcode"),
        ({"country": None}, "country"),
        ({"country": ""}, "country"),
    ],
)
def test_empty_values_are_left_out(changes: dict[str, Any], absent: str) -> None:
    result = mapped(**changes)
    assert absent not in result.fields
    assert result.warnings == ()


def test_fields_not_in_the_parents_paragraph_are_not_sent() -> None:
    fields = mapped().fields
    for name in ("middle_name", "work_phone", "gender", "identifier", "child_ids"):
        assert name not in fields


def test_unknown_country_is_dropped_with_a_warning_without_the_value() -> None:
    result = mapped(country="Atlantis")
    assert "country" not in result.fields
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("country: one iSAMS value has no ISO country code")
    assert "Atlantis" not in result.warnings[0]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"surname": None}, "missing in iSAMS: surname"),
        ({"surname": "  "}, "missing in iSAMS: surname"),
        ({"emailAddress": None}, "missing in iSAMS: emailAddress"),
        ({"emailAddress": ""}, "missing in iSAMS: emailAddress"),
        ({"surname": None, "emailAddress": None}, "missing in iSAMS: surname, emailAddress"),
        ({"emailAddress": "n/a"}, "not a valid e-mail address in iSAMS: emailAddress"),
        (
            {"surname": None, "emailAddress": "anne at home"},
            "missing in iSAMS: surname; not a valid e-mail address in iSAMS: emailAddress",
        ),
    ],
)
def test_surname_and_a_valid_email_are_required(changes: dict[str, Any], reason: str) -> None:
    assert map_parent(contact(**changes), RULES) == Skip(reason)
    result = plan(contact(**changes))
    assert result.actions == (Skip(reason),)
    assert result.state is None


def test_forename_is_not_required() -> None:
    assert "first_name" not in mapped(forename=None).fields


# --- Which contacts sync -------------------------------------------------------------------


@pytest.mark.parametrize("contact_type", ["Parents", "parents", "PARENTS", " Parents ", "guardian"])
def test_contact_type_is_compared_ignoring_case(contact_type: str) -> None:
    assert contact_syncs(contact(contactType=contact_type), RULES) is None


def test_rules_built_directly_compare_ignoring_case_too() -> None:
    rules = ParentRules(frozenset({"PARENTS"}), {})
    assert rules.contact_types == frozenset({"parents"})
    assert contact_syncs(contact(contactType="Parents"), rules) is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"contactType": "Emergency"}, 'contactType "Emergency" is not in mappings.contact_types'),
        (
            {"contactType": None},
            "contactType is empty in iSAMS, so it is not in mappings.contact_types",
        ),
        ({"personGuid": None, "personId": None}, NO_PERSON),
        ({"deceased": True}, DECEASED),
        ({"deceased": "true"}, DECEASED),
        (
            {"contactType": "Doctor", "personGuid": "", "personId": None},
            f'contactType "Doctor" is not in mappings.contact_types; {NO_PERSON}',
        ),
    ],
)
def test_contacts_that_do_not_sync_say_why(changes: dict[str, Any], reason: str) -> None:
    record = contact(**changes)
    assert contact_syncs(record, RULES) == reason
    assert map_parent(record, RULES) == Skip(reason)


def test_no_contact_types_configured_syncs_nobody() -> None:
    rules = ParentRules.from_settings([], {})
    assert contact_syncs(contact(), rules) == (
        'contactType "Parents" is not in mappings.contact_types'
    )


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({}, "9b2e4c1a-0000-4000-8000-000000000001"),
        (
            {"personGuid": "9b2e4c1a-0000-4000-8000-000000000001"},
            "9b2e4c1a-0000-4000-8000-000000000001",
        ),
        ({"personGuid": None}, "88001"),
        ({"personGuid": "  ", "personId": "88001"}, "88001"),
        ({"personGuid": None, "personId": 88001.0}, "88001"),
        ({"personGuid": None, "personId": None}, None),
    ],
)
def test_person_key_is_the_guid_else_the_person_id(
    changes: dict[str, Any], key: str | None
) -> None:
    assert person_key(contact(**changes)) == key


@pytest.mark.parametrize(
    ("email", "key"),
    [
        ("Anne@Home.Example", "anne@home.example"),
        ("  anne@home.example ", "anne@home.example"),
        ("ANNE@HOME.EXAMPLE", "anne@home.example"),
    ],
)
def test_email_key_ignores_case(email: str, key: str) -> None:
    assert email_key(email) == key


def test_representative_contact_is_the_latest_synced_record() -> None:
    older = contact(id=1, lastUpdated="2026-11-01T00:00:00", forename="Old")
    newer = contact(id=2, lastUpdated="2026-11-28T00:00:00", forename="New")
    emergency = contact(id=3, lastUpdated="2026-12-01T00:00:00", contactType="Emergency")
    assert representative_contact([older, newer, emergency], RULES) == newer
    assert representative_contact([emergency, newer, older], RULES) == newer


def test_representative_contact_ties_go_to_the_lowest_id() -> None:
    records = [contact(id=id_, lastUpdated=None) for id_ in (12, 3, "x", None)]
    chosen = representative_contact(records, RULES)
    assert chosen is not None
    assert chosen.id == "3"


def test_representative_contact_is_none_when_nothing_syncs() -> None:
    assert representative_contact([contact(contactType="Emergency")], RULES) is None
    assert representative_contact([], RULES) is None


# --- Parsing -------------------------------------------------------------------------------


def test_parse_is_lenient_about_odd_shapes() -> None:
    record = parse_contact(
        {
            "id": 501,
            "personId": 88001,
            "contactType": 7,
            "title": ["Mr"],
            "surname": "Byron",
            "emailAddress": " byron@home.example ",
            "deceased": "no",
            "parentalResponsibility": "Y",
            "studentHome": 2,
            "lastUpdated": "yesterday",
            "countryIsoMappings": "junk",
            "unknownField": {"nested": True},
        }
    )
    assert isinstance(record, IsamsContact)
    assert record.id == "501"
    assert record.person_id == "88001"
    assert record.contact_type == "7"
    assert record.title is None
    assert record.email_address == "byron@home.example"
    assert record.deceased is False
    assert record.parental_responsibility is True
    assert record.student_home is None
    assert record.last_updated is None
    assert record.country_iso_mappings == ()


@pytest.mark.parametrize("raw", [[], "contact", None, 5])
def test_non_objects_are_unreadable(raw: Any) -> None:
    assert parse_contact(raw) == Skip("iSAMS record is unreadable: not a JSON object")


# --- Plans: precise semantics --------------------------------------------------------------


def test_new_parent_with_an_active_child_is_created() -> None:
    result = plan(contact())
    assert result.actions == (Create(payload=EXPECTED),)
    assert result.state == PushedState(EXPECTED)


def test_new_parent_without_empty_values() -> None:
    result = plan(contact(title=None, address2="", country=None))
    (create,) = result.actions
    assert isinstance(create, Create)
    assert create.payload == {
        k: v for k, v in EXPECTED.items() if k not in {"salutation", "street_address_ii", "country"}
    }
    assert create.create_only == {}


def test_new_parent_whose_children_are_not_active_yet_is_skipped() -> None:
    result = plan(contact(), active=False)
    assert result.actions == (Skip(NO_ACTIVE_CHILD),)
    assert result.state is None


def test_unchanged_parent_needs_no_write() -> None:
    result = plan(contact(), synced())
    assert result.actions == (NoChange(),)
    assert result.state == synced()


def test_update_sends_only_changed_fields() -> None:
    result = plan(contact(mobileNumber="07700 900999", title="Dr"), synced())
    assert result.actions == (
        Update(changes={"mobile_phone_number": "07700 900999", "salutation": "Dr."}),
    )
    assert result.state is not None
    assert result.state.managebac_id == 3031


def test_update_clears_fields_that_isams_emptied() -> None:
    result = plan(contact(title=None, profession="", address2=None, country="Atlantis"), synced())
    assert result.actions == (
        Update(changes={"salutation": "", "title": "", "street_address_ii": "", "country": ""}),
    )
    assert result.state is not None
    assert "salutation" not in result.state.fields
    assert len(result.warnings) == 1


def test_unknown_title_after_mrs_clears_the_salutation() -> None:
    result = plan(contact(title="Prof"), synced())
    assert result.actions == (Update(changes={"salutation": ""}),)
    assert result.warnings == (SALUTATION_NOT_SENT,)


def test_email_change_is_an_update() -> None:
    result = plan(contact(emailAddress="anne@new.example"), synced())
    assert result.actions == (Update(changes={"email": "anne@new.example"}),)


def test_synced_parent_losing_email_or_surname_is_skipped_not_cleared() -> None:
    result = plan(contact(emailAddress=None), synced())
    assert result.actions == (Skip("missing in iSAMS: emailAddress"),)
    assert result.state == synced()


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (None, NO_CONTACT),
        (
            contact(contactType="Emergency"),
            f'{NO_CONTACT}: contactType "Emergency" is not in mappings.contact_types',
        ),
    ],
)
def test_no_synced_contact_left_archives(record: IsamsContact | None, reason: str) -> None:
    result = plan(record, synced())
    assert result.actions == (Archive(),)
    assert result.actions[0] == Archive(withdrawn_on=None)
    assert result.state == PushedState(EXPECTED, archived=True, managebac_id=3031)
    # ... and once archived, the same again is a skip with the reason.
    again = plan(record, result.state)
    assert again.actions == (Skip(reason),)
    assert again.state == result.state


def test_parent_archive_takes_no_body() -> None:
    (archive,) = plan(None, synced()).actions
    assert isinstance(archive, Archive)
    assert archive.body() == {}


def test_no_active_child_archives() -> None:
    result = plan(contact(), synced(), active=False)
    assert result.actions == (Archive(),)
    assert result.state == PushedState(EXPECTED, archived=True, managebac_id=3031)


@pytest.mark.parametrize("active", [True, False])
def test_no_synced_contact_and_never_pushed_is_a_skip(active: bool) -> None:
    result = plan(None, None, active=active)
    assert result.actions == (Skip(NO_CONTACT),)
    assert result.state is None


def test_archived_parent_with_an_active_child_again_is_unarchived_and_rewritten() -> None:
    before = PushedState(
        {**EXPECTED, "title": "Old job", "phone_number": "01225 000000"},
        archived=True,
        managebac_id=3031,
    )
    result = plan(contact(telephoneNumber=None), before)
    rewrite = {k: v for k, v in EXPECTED.items() if k != "phone_number"}
    assert result.actions == (Unarchive(), Update(changes={**rewrite, "phone_number": ""}))
    assert result.state == PushedState(rewrite, archived=False, managebac_id=3031)


def test_archived_parent_still_without_an_active_child_stays_archived() -> None:
    result = plan(contact(), archived(), active=False)
    assert result.actions == (Skip(NO_ACTIVE_CHILD),)
    assert result.state == archived()


def test_archived_parent_missing_a_required_field_stays_archived() -> None:
    result = plan(contact(surname=None), archived())
    assert result.actions == (Skip("missing in iSAMS: surname"),)
    assert result.state == archived()


def test_warnings_carry_no_personal_values() -> None:
    result = plan(contact(title="Zed", country="Zorgland"))
    text = " ".join(result.warnings)
    assert len(result.warnings) == 2
    for value in ("Zed", "Zorgland", "Anne", "Milbanke", "anne.milbanke"):
        assert value not in text


def test_ids_that_only_look_like_digits_do_not_break_the_representative_choice() -> None:
    from consumers.domain.parents import ParentRules, representative_contact

    rules = ParentRules.from_settings(["Parents"], {})
    contacts = [
        IsamsContact.model_validate(
            {"id": ident, "personId": "7", "contactType": "Parents", "surname": "S"}
        )
        for ident in ("¹", "2")
    ]
    chosen = representative_contact(contacts, rules)
    assert chosen is not None and chosen.id == "2"
