"""Properties: for any iSAMS-shaped contact or employee, parsing, mapping and planning never
raise, every write validates against the ManageBac+ Parent / Teacher request schema, and a plan
applied once leaves nothing more to write.

The schema comes from `tests/fixtures/managebac-v2-subset.yaml` (a copy of the shared reference;
`test_student_properties.py` checks the copy is current).
"""

from __future__ import annotations

import copy
import string
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from consumers.domain.isams import IsamsContact, IsamsEmployee
from consumers.domain.parents import (
    MappedParent,
    ParentRules,
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
from consumers.domain.records import LinkState
from consumers.domain.relationships import (
    MANAGEBAC_RELATIONSHIPS,
    link_state_after,
    plan_link,
    relationship_for,
)
from consumers.domain.teachers import (
    MappedTeacher,
    TeacherRules,
    map_teacher,
    parse_employee,
    plan_teacher,
)

FIXTURE = Path(__file__).parents[2] / "tests/fixtures/managebac-v2-subset.yaml"
SPEC_URI = "urn:managebac-v2-subset"
DATE = r"^\d{4}-\d{2}-\d{2}$"
PARENT_RULES = ParentRules.from_settings(["Parents", "guardian"], {"Parent": "Legal Guardian"})
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# --- The ManageBac+ schemas ----------------------------------------------------------------


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    return loaded


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return Draft202012Validator(schema, registry=registry)


@cache
def published(method: str, path: str) -> Draft202012Validator:
    """A request body exactly as published (e.g. POST /v2/parents)."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return _validator(
        {
            "$ref": f"{SPEC_URI}#/paths/{pointer}/{method}"
            "/requestBody/content/application~1json/schema"
        }
    )


@cache
def strict(kind: str, create: bool) -> Draft202012Validator:
    """The Parent or Teacher schema made strict (the published `anyOf` accepts any object).

    One object with PersonalInformation's and the kind's writable properties, nothing else;
    dates yyyy-mm-dd; ISO codes upper-case; email and last_name required on create and never
    blanked; an update may clear a field with `""` (docs/design.md §3, ManageBac+ ignores nulls),
    the salutation included.
    """
    schemas = spec()["components"]["schemas"]
    branches = [schemas["PersonalInformation"]]
    if kind == "parent":
        branches += schemas["Parent"]["anyOf"][1:]
    properties: dict[str, Any] = {}
    for branch in branches:
        properties.update(copy.deepcopy(branch["properties"]))
    for name, schema in list(properties.items()):
        if schema.get("readOnly") or name == "id":
            del properties[name]
    blank = "" if create else "|"
    properties["birthday"] = {"type": "string", "pattern": rf"^(\d{{4}}-\d{{2}}-\d{{2}}{blank})$"}
    properties["country"] = {"type": "string", "pattern": rf"^([A-Z]{{2}}{blank})$"}
    properties["nationalities"] = {"type": "array", "items": {"pattern": "^[A-Z]{2}$"}}
    properties["languages"] = {"type": "array", "items": {"pattern": "^[A-Z]{3}$"}}
    for name in ("email", "last_name"):
        properties[name] = {**properties[name], "minLength": 1}
    if kind == "parent" and not create:
        salutation = properties["salutation"]
        properties["salutation"] = {**salutation, "enum": [*salutation["enum"], ""]}
    result: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if create:
        result["required"] = ["email", "last_name"]
    return _validator(result)


@cache
def child_relation() -> Draft202012Validator:
    return _validator({"$ref": f"{SPEC_URI}#/components/schemas/ChildRelation"})


def test_strict_schemas_refuse_what_managebac_would() -> None:
    """The strict schemas have teeth (so the properties below mean something)."""
    assert not strict("parent", True).is_valid({"email": "a@b.example"})
    assert not strict("parent", True).is_valid(
        {"email": "a@b.example", "last_name": "L", "salutation": "Prof."}
    )
    assert not strict("parent", True).is_valid({"email": "a@b.example", "last_name": "L", "x": 1})
    assert not strict("parent", False).is_valid({"country": "United Kingdom"})
    assert not strict("parent", False).is_valid({"email": ""})
    assert strict("parent", False).is_valid({"salutation": "", "country": "", "title": ""})
    assert not strict("teacher", True).is_valid(
        {"email": "a@b.example", "last_name": "L", "salutation": "Mr."}
    )
    assert not strict("teacher", False).is_valid({"languages": ["en"]})
    assert not strict("teacher", False).is_valid({"birthday": "1971-12-26T00:00:00"})
    assert strict("teacher", True).is_valid({"email": "a@b.example", "last_name": "L"})


# --- iSAMS-shaped records ------------------------------------------------------------------

odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.text(max_size=4), max_size=2),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
)
text_like = st.one_of(st.text(max_size=30), st.text(string.ascii_letters + " -'", max_size=20), odd)
date_like = st.one_of(
    st.dates().map(date.isoformat),
    st.datetimes().map(datetime.isoformat),
    st.sampled_from(["0001-01-01T00:00:00", "1900-01-01", "2013-02-30", "17/04/2013", ""]),
    odd,
)
flag = st.one_of(st.booleans(), st.sampled_from(["true", "False", "Y", "no", 1, 0, 2]), odd)
emails = st.one_of(
    st.sampled_from(["anne@home.example", "ANNE@Home.Example", "n/a", "a@b", " x@y.z "]),
    st.emails(),
    text_like,
)
countries = st.one_of(
    st.sampled_from(["United Kingdom", "France", "USA", "Scotland", "Atlantis", "gb", " "]),
    text_like,
)
iso_mapping = st.fixed_dictionaries(
    {},
    optional={
        "iSAMSName": st.one_of(countries, text_like),
        "isoCode2Char": st.one_of(st.sampled_from(["GB", "gb", "fr", "", "G1", "GBR"]), odd),
        "isoCode3Char": st.one_of(st.sampled_from(["GBR", "spa", "NLD", "", "xx"]), odd),
        "isoName": st.one_of(st.sampled_from(["United Kingdom", "Spanish"]), text_like),
    },
)
mappings = st.one_of(st.lists(st.one_of(iso_mapping, odd), max_size=3), iso_mapping, odd)
titles = st.one_of(
    st.sampled_from(["Mr", "Mr.", "MRS", "Ms", "Miss", "dr.", "Prof", "Rev", "", "Mx"]), text_like
)
relationship_names = st.one_of(
    st.sampled_from(["Mother", "Mum", "Step-Father", "Grandma", "Guardian", "Parent", "Nope"]),
    st.text(max_size=20),
)
relationships = st.one_of(relationship_names, text_like)
contact_types = st.one_of(
    st.sampled_from(["Parents", "parents", "GUARDIAN", "Emergency", "", "Doctor"]), text_like
)
contacts = st.fixed_dictionaries(
    {},
    optional={
        "id": text_like,
        "personId": st.one_of(st.integers(min_value=1, max_value=10**9), text_like),
        "personGuid": st.one_of(st.uuids().map(str), text_like),
        "contactType": contact_types,
        "relationship": relationships,
        "parentalResponsibility": flag,
        "title": titles,
        "forename": text_like,
        "middleNames": text_like,
        "surname": text_like,
        "emailAddress": emails,
        "mobileNumber": text_like,
        "telephoneNumber": text_like,
        "address1": text_like,
        "address2": text_like,
        "town": text_like,
        "county": text_like,
        "postcode": text_like,
        "country": countries,
        "profession": text_like,
        "deceased": flag,
        "lastUpdated": date_like,
        "countryIsoMappings": mappings,
        "unexpected": odd,
    },
)
letters = st.text(string.ascii_letters + "-' ", min_size=1, max_size=12).filter(str.strip)
good_contacts = st.builds(
    lambda raw, core: {**raw, **core},
    contacts,
    st.fixed_dictionaries(
        {
            "personGuid": st.sampled_from(["A-1", "a-1", "B-2"]),
            "contactType": st.sampled_from(["Parents", "guardian"]),
            "surname": letters,
            "emailAddress": st.one_of(st.emails(), st.just("anne@home.example")),
            "deceased": st.just(False),
        }
    ),
)
any_contact = st.one_of(contacts, good_contacts)

languages = st.sampled_from(["English", "German", "Spanish (Latin American)", "Klingonese"])
nationalities = st.sampled_from(["British", "Scottish", "French", "Martian", " "])
names = st.one_of(
    st.lists(st.one_of(nationalities, languages, odd), max_size=3),
    st.lists(st.fixed_dictionaries({"name": st.one_of(nationalities, languages, odd)}), max_size=2),
    languages,
    odd,
)
employees = st.fixed_dictionaries(
    {},
    optional={
        "id": text_like,
        "personGuid": text_like,
        "title": titles,
        "forename": text_like,
        "middleNames": text_like,
        "surname": text_like,
        "preferredName": text_like,
        "gender": st.one_of(st.sampled_from(["M", "F", "m", "X", "Male", ""]), text_like),
        "dateOfBirth": date_like,
        "nationalities": names,
        "language": names,
        "schoolEmailAddress": emails,
        "personalEmailAddress": emails,
        "schoolMobileNumber": text_like,
        "personalMobileNumber": text_like,
        "personalTelephoneNumber": text_like,
        "personalAddress1": text_like,
        "personalAddress2": text_like,
        "personalTown": text_like,
        "personalCounty": text_like,
        "personalPostcode": text_like,
        "personalCountry": countries,
        "isTeachingStaff": flag,
        "systemStatus": st.one_of(
            st.sampled_from(["Current", "current", "Left", "1", 1, "Former"]), text_like
        ),
        "leavingDate": date_like,
        "nationalityIsoMappings": mappings,
        "languageIsoMappings": mappings,
        "countryIsoMappings": mappings,
        "unexpected": odd,
    },
)
good_employees = st.builds(
    lambda raw, core: {**raw, **core},
    employees,
    st.fixed_dictionaries(
        {
            "surname": letters,
            "schoolEmailAddress": st.one_of(st.emails(), st.just("cb@school.example")),
            "systemStatus": st.sampled_from(["Current", "CURRENT", "1"]),
        }
    ),
)
any_employee = st.one_of(employees, good_employees)
rarely = st.sampled_from([False, False, False, True])
access_values = st.sampled_from([True, True, False, None])
teacher_rules = st.builds(
    TeacherRules,
    enabled=st.sampled_from([True, True, True, False]),
    on_access_revoked=st.sampled_from(["archive", "ignore"]),
)


def _check_writes(result: Plan, kind: str) -> None:
    """Every write is a valid ManageBac+ request; the plan has a legal shape."""
    plural = f"{kind}s"
    actions = result.actions
    assert actions
    if isinstance(actions[0], Skip | NoChange):
        assert len(actions) == 1
        assert result.writes == ()
    for action in result.writes:
        if isinstance(action, Create):
            body = action.body()
            published("post", f"/v2/{plural}").validate({kind: body})
            strict(kind, create=True).validate(body)
            assert all(value not in ("", [], None) for value in body.values())
            assert action.create_only == {}
            strict(kind, create=False).validate(action.adopt().changes)
        elif isinstance(action, Update):
            published("patch", f"/v2/{plural}/{{id}}").validate({kind: action.changes})
            strict(kind, create=False).validate(action.changes)
            assert action.changes
        elif isinstance(action, Archive):
            assert action.body() == {}  # parents' and teachers' archive takes no body
    if isinstance(actions[0], Unarchive):
        assert len(actions) == 2
        assert isinstance(actions[1], Update)


def _previous_parent(
    raw: dict[str, Any] | None, archived: bool, managebac_id: int | None
) -> PushedState | None:
    """A realistic ledger state: what an earlier version of some contact mapped to."""
    record = parse_contact(raw) if raw is not None else None
    if not isinstance(record, IsamsContact):
        return None
    mapped = map_parent(record, PARENT_RULES)
    if isinstance(mapped, Skip):
        return None
    return PushedState(mapped.fields, archived=archived, managebac_id=managebac_id)


def _previous_teacher(
    raw: dict[str, Any] | None, archived: bool, managebac_id: int | None
) -> PushedState | None:
    record = parse_employee(raw) if raw is not None else None
    if not isinstance(record, IsamsEmployee):
        return None
    mapped = map_teacher(record)
    if isinstance(mapped, Skip):
        return None
    return PushedState(mapped.fields, archived=archived, managebac_id=managebac_id)


# --- Parents -------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(raw=st.one_of(any_contact, odd))
def test_contacts_parse_and_map_without_raising(raw: Any) -> None:
    record = parse_contact(raw)
    if isinstance(record, Skip):
        assert record.reason.startswith("iSAMS record is unreadable")
        assert not isinstance(raw, dict)
        return
    key = person_key(record)
    assert key is None or key.strip() == key != ""
    mapped = map_parent(record, PARENT_RULES)
    assert isinstance(mapped, MappedParent | Skip)
    if isinstance(mapped, MappedParent):
        published("post", "/v2/parents").validate({"parent": mapped.fields})
        strict("parent", create=True).validate(mapped.fields)


@PROPERTY_SETTINGS
@given(
    raw=any_contact,
    gone=rarely,
    before=st.one_of(st.none(), good_contacts, good_contacts, contacts),
    archived=rarely,
    managebac_id=st.one_of(st.none(), st.integers(min_value=1, max_value=10**9)),
    active=st.sampled_from([True, True, True, False]),
)
def test_parent_plans_never_raise_and_every_write_is_a_valid_request(
    raw: dict[str, Any],
    gone: bool,
    before: dict[str, Any] | None,
    archived: bool,
    managebac_id: int | None,
    active: bool,
) -> None:
    parsed = parse_contact(raw)
    assert isinstance(parsed, IsamsContact)
    record = None if gone else parsed
    previous = _previous_parent(before, archived, managebac_id)
    result = plan_parent(record, PARENT_RULES, previous, active)
    _check_writes(result, "parent")
    again = plan_parent(record, PARENT_RULES, result.state, active)
    assert again.writes == ()
    if result.state is not None and previous is not None:
        assert result.state.managebac_id == previous.managebac_id


@PROPERTY_SETTINGS
@given(raws=st.lists(any_contact, max_size=5), seed=st.randoms(use_true_random=False))
def test_the_representative_contact_does_not_depend_on_order(raws: list[Any], seed: Any) -> None:
    records = [IsamsContact.model_validate(raw) for raw in raws]
    chosen = representative_contact(records, PARENT_RULES)
    shuffled = list(records)
    seed.shuffle(shuffled)
    assert representative_contact(shuffled, PARENT_RULES) == chosen


@PROPERTY_SETTINGS
@given(
    isams=st.one_of(relationship_names, st.none()),
    overrides=st.dictionaries(
        relationship_names,
        st.one_of(st.sampled_from(MANAGEBAC_RELATIONSHIPS), st.text(max_size=8)),
        max_size=3,
    ),
    previous=st.one_of(
        st.none(), st.builds(LinkState, st.sampled_from(MANAGEBAC_RELATIONSHIPS), st.booleans())
    ),
    removed=rarely,
)
def test_relationships_are_always_managebacs_and_links_converge(
    isams: str | None,
    overrides: dict[str, str],
    previous: LinkState | None,
    removed: bool,
) -> None:
    found, _ = relationship_for(isams, overrides)
    assert found in MANAGEBAC_RELATIONSHIPS
    child_relation().validate({"id": 1, "relationship": found})
    desired = None if removed else found
    action = plan_link(desired, previous)
    after = link_state_after(action, previous)
    assert isinstance(plan_link(desired, after), NoChange)


@PROPERTY_SETTINGS
@given(raw=good_contacts, secret=st.sampled_from(["Zorgland", "Zorgish", "Zed"]))
def test_parent_warnings_never_carry_the_values(raw: dict[str, Any], secret: str) -> None:
    raw = {**raw, "title": secret, "country": secret, "relationship": secret}
    record = parse_contact(raw)
    assert isinstance(record, IsamsContact)
    result = plan_parent(record, PARENT_RULES, None, True)
    _, link_warnings = relationship_for(record.relationship, {})
    assert not any(secret in warning for warning in (*result.warnings, *link_warnings))


# --- Teachers ------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(raw=st.one_of(any_employee, odd))
def test_employees_parse_and_map_without_raising(raw: Any) -> None:
    record = parse_employee(raw)
    if isinstance(record, Skip):
        assert record.reason.startswith("iSAMS record is unreadable")
        assert not isinstance(raw, dict)
        return
    mapped = map_teacher(record)
    assert isinstance(mapped, MappedTeacher | Skip)
    if isinstance(mapped, MappedTeacher):
        published("post", "/v2/teachers").validate({"teacher": mapped.fields})
        strict("teacher", create=True).validate(mapped.fields)


@PROPERTY_SETTINGS
@given(
    raw=any_employee,
    gone=rarely,
    deleted=rarely,
    access=access_values,
    rules=teacher_rules,
    before=st.one_of(st.none(), good_employees, good_employees, employees),
    archived=rarely,
    managebac_id=st.one_of(st.none(), st.integers(min_value=1, max_value=10**9)),
)
def test_teacher_plans_never_raise_and_every_write_is_a_valid_request(
    raw: dict[str, Any],
    gone: bool,
    deleted: bool,
    access: bool | None,
    rules: TeacherRules,
    before: dict[str, Any] | None,
    archived: bool,
    managebac_id: int | None,
) -> None:
    parsed = parse_employee(raw)
    assert isinstance(parsed, IsamsEmployee)
    record = None if gone else parsed
    previous = _previous_teacher(before, archived, managebac_id)
    result = plan_teacher(record, access, rules, previous, deleted)
    _check_writes(result, "teacher")
    again = plan_teacher(record, access, rules, result.state, deleted)
    assert again.writes == ()
    if result.state is not None and previous is not None:
        assert result.state.managebac_id == previous.managebac_id
    left = deleted or record is None or not record.is_current
    if rules.enabled and left and previous is not None and not previous.archived:
        assert result.actions == (Archive(),)  # leaving always archives
    if not rules.enabled or (access is None and not left):
        assert result.writes == ()


@PROPERTY_SETTINGS
@given(raw=good_employees, secret=st.sampled_from(["Zorgland", "Zorgish", "Zed"]))
def test_teacher_warnings_never_carry_the_values(raw: dict[str, Any], secret: str) -> None:
    raw = {
        **raw,
        "gender": secret,
        "language": secret,
        "nationalities": [secret],
        "personalCountry": secret,
    }
    record = parse_employee(raw)
    assert isinstance(record, IsamsEmployee)
    result = plan_teacher(record, True, TeacherRules(enabled=True), None, False)
    assert not any(secret in warning for warning in result.warnings)
