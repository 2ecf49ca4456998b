"""Properties: for any iSAMS-shaped record, mapping and planning never raise, every write
validates against the ManageBac+ Student request schema, and a plan applied twice is idle.

The schema comes from `tests/fixtures/managebac-v2-subset.yaml`, a copy of the published
ManageBac+ v2 subset kept so the repository is self-contained (tests/unit/test_copies.py).
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

from consumers.domain.isams import IsamsStudent
from consumers.domain.plan import Create, NoChange, Plan, PushedState, Skip, Unarchive, Update
from consumers.domain.students import (
    MappedStudent,
    StudentRules,
    map_student,
    parse_student,
    plan_student,
)

REPO = Path(__file__).parents[2]
FIXTURE = REPO / "tests/fixtures/managebac-v2-subset.yaml"
SPEC_URI = "urn:managebac-v2-subset"
RULES = StudentRules(
    year_groups={7: 10209272, 8: 10209273, 0: 10209260},
    placeholder_email_domain="placeholder.invalid",
)
TODAY = date(2026, 11, 28)
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


# --- The ManageBac+ schema -----------------------------------------------------------------


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    return loaded


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return Draft202012Validator(schema, registry=registry)


def _request_schema(method: str, path: str) -> dict[str, Any]:
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {
        "$ref": f"{SPEC_URI}#/paths/{pointer}/{method}/requestBody/content/application~1json/schema"
    }


@cache
def published_create() -> Draft202012Validator:
    """The POST /v2/students request body, exactly as published."""
    return _validator(_request_schema("post", "/v2/students"))


@cache
def published_update() -> Draft202012Validator:
    """The PATCH /v2/students/{id} request body, exactly as published."""
    return _validator(_request_schema("patch", "/v2/students/{id}"))


def _strict_student(create: bool) -> dict[str, Any]:
    """The Student schema made strict: one object with both branches' writable properties,
    nothing else allowed, dates as yyyy-mm-dd. (The published `anyOf` accepts any object.)

    `attendance_start_date` (seen in ManageBac+ data, absent from the published schema) is
    allowed only on create.
    """
    schemas = spec()["components"]["schemas"]
    properties: dict[str, Any] = {}
    for branch in [schemas["PersonalInformation"], *schemas["Student"]["anyOf"][1:]]:
        properties.update(copy.deepcopy(branch["properties"]))
    for name, schema in list(properties.items()):
        if schema.get("readOnly") or name == "id":
            del properties[name]
    # An update clears a date with "" (docs/design.md §3: ManageBac+ ignores nulls).
    date_pattern = DATE_PATTERN if create else r"^(\d{4}-\d{2}-\d{2})?$"
    for name in ("birthday", "withdrawn_on", "graduated_on"):
        properties[name] = {**properties[name], "pattern": date_pattern}
    if create:
        properties["attendance_start_date"] = {"type": "string", "pattern": DATE_PATTERN}
    strict: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if create:
        strict["required"] = ["email", "last_name"]  # "On POST (create), email and last_name"
    return strict


@cache
def strict_create() -> Draft202012Validator:
    return _validator(_strict_student(create=True))


@cache
def strict_update() -> Draft202012Validator:
    return _validator(_strict_student(create=False))


def test_strict_schema_refuses_what_managebac_would() -> None:
    """The strict schema has teeth (so the properties below mean something)."""
    assert not strict_update().is_valid({"nationalities": ""})
    assert not strict_update().is_valid({"year_group_id": "10209272"})
    assert not strict_update().is_valid({"attendance_start_date": "2024-09-04"})
    assert not strict_update().is_valid({"birthday": "2013-04-17T00:00:00"})
    assert not strict_create().is_valid({"first_name": "Ada"})
    assert strict_create().is_valid(
        {"email": "a@b.example", "last_name": "L", "attendance_start_date": "2024-09-04"}
    )


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
nationality = st.sampled_from(
    ["British", "English", "Scottish", "French", "Chinese", "Martian", "united kingdom", " "]
)
language = st.sampled_from(["English", "German", "Spanish (Latin American)", "Klingonese", "Greek"])
names = st.one_of(
    st.lists(st.one_of(nationality, language, st.text(max_size=10), odd), max_size=4),
    st.lists(st.fixed_dictionaries({"name": st.one_of(nationality, language, odd)}), max_size=2),
    nationality,
    odd,
)
iso_mapping = st.fixed_dictionaries(
    {},
    optional={
        "iSAMSName": st.one_of(nationality, language, text_like),
        "isoCode2Char": st.one_of(st.sampled_from(["GB", "gb", "es", "", "G1", "GBR"]), odd),
        "isoCode3Char": st.one_of(st.sampled_from(["GBR", "spa", "SPA", "", "xx"]), odd),
        "isoName": st.one_of(st.sampled_from(["United Kingdom", "Spanish"]), text_like),
    },
)
mappings = st.one_of(st.lists(st.one_of(iso_mapping, odd), max_size=3), iso_mapping, odd)
address = st.fixed_dictionaries(
    {},
    optional={
        key: text_like
        for key in ("id", "address1", "address2", "address3", "town", "county", "postcode")
    },
)
addresses = st.one_of(st.lists(st.one_of(address, odd), max_size=2), address, odd)
school_ids = st.one_of(
    st.text(string.digits, min_size=1, max_size=14),
    st.integers(min_value=0, max_value=10**14),
    st.text(min_size=1, max_size=10).filter(str.strip),
)
records = st.fixed_dictionaries(
    {"schoolId": school_ids},
    optional={
        "id": text_like,
        "schoolCode": st.one_of(st.sampled_from(["AA1001", "B 2/3", "..", "x@y"]), text_like),
        "forename": text_like,
        "middlenames": text_like,
        "surname": text_like,
        "preferredName": text_like,
        "dob": date_like,
        "gender": st.one_of(st.sampled_from(["M", "F", "m", "X", "Male", ""]), text_like),
        "yearGroup": st.one_of(st.sampled_from([0, 7, 8, 9, "7", 7.0, "Year 7", True]), odd),
        "enrolmentDate": date_like,
        "schoolEmailAddress": st.one_of(
            st.sampled_from(["ada@school.example", "ADA@School.Example", "n/a", "a@b"]),
            st.emails(),
            text_like,
        ),
        "mobileNumber": text_like,
        "nationalities": names,
        "languages": names,
        "homeAddresses": addresses,
        "systemStatus": st.one_of(
            st.sampled_from(["Current", "current", "CURRENT", "Left", "1", 1]), text_like
        ),
        "leavingDate": date_like,
        "lastUpdated": date_like,
        "nationalityIsoMappings": mappings,
        "languageIsoMappings": mappings,
        "unexpected": odd,
    },
)
# Records that are creatable (odd values elsewhere), so Create/Update paths are well exercised.
letters = st.text(string.ascii_letters + "-' ", min_size=1, max_size=12).filter(str.strip)
good_records = st.builds(
    lambda raw, core: {**raw, **core},
    records,
    st.fixed_dictionaries(
        {
            "schoolCode": st.sampled_from(["AA1001", "B 2/3", "x@y", "1001"]),
            "forename": letters,
            "surname": letters,
            "yearGroup": st.sampled_from([0, 7, 8, "7", 8.0]),
            "systemStatus": st.sampled_from(["Current", "current", "CURRENT", "1"]),
        }
    ),
)
any_record = st.one_of(records, good_records)
rarely = st.sampled_from([False, False, False, True])

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _previous(raw: dict[str, Any], archived: bool, managebac_id: int | None) -> PushedState | None:
    """A realistic ledger state: what an earlier version of some record mapped to."""
    record = parse_student(raw)
    if isinstance(record, Skip):
        return None
    mapped = map_student(record, RULES)
    if isinstance(mapped, Skip):
        return None
    return PushedState(mapped.fields, archived=archived, managebac_id=managebac_id)


def _check_writes(result: Plan) -> None:
    """Every write is a valid ManageBac+ request; the plan has a legal shape."""
    actions = result.actions
    assert actions
    if isinstance(actions[0], Skip | NoChange):
        assert len(actions) == 1
        assert result.writes == ()
    for action in result.writes:
        if isinstance(action, Create):
            body = action.body()
            published_create().validate({"student": body})
            strict_create().validate(body)
            assert all(value not in ("", [], None) for value in body.values())
            assert "attendance_start_date" not in action.payload
            strict_update().validate(action.adopt().changes)
        elif isinstance(action, Update):
            published_update().validate({"student": action.changes})
            strict_update().validate(action.changes)
            assert action.changes
    for field, value in _payload_fields(result):
        if field == "nationalities":
            assert all(len(code) == 2 and code.isupper() for code in value)
        if field == "languages":
            assert all(len(code) == 3 and code.isupper() for code in value)


def _payload_fields(result: Plan) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for action in result.writes:
        if isinstance(action, Create):
            pairs += action.body().items()
        elif isinstance(action, Update):
            pairs += action.changes.items()
    return pairs


@PROPERTY_SETTINGS
@given(raw=st.one_of(any_record, odd))
def test_parsing_and_mapping_never_raise(raw: Any) -> None:
    record = parse_student(raw)
    if isinstance(record, Skip):
        assert record.reason.startswith("iSAMS record is unreadable")
        return
    mapped = map_student(record, RULES)
    assert isinstance(mapped, MappedStudent | Skip)
    if isinstance(mapped, MappedStudent):
        published_create().validate({"student": {**mapped.fields, **mapped.create_only}})
        strict_create().validate({**mapped.fields, **mapped.create_only})


@PROPERTY_SETTINGS
@given(raw=any_record)
def test_records_with_a_school_id_are_always_readable(raw: dict[str, Any]) -> None:
    assert isinstance(parse_student(raw), IsamsStudent)


@PROPERTY_SETTINGS
@given(
    raw=any_record,
    before=st.one_of(st.none(), good_records, good_records, records),
    archived=rarely,
    managebac_id=st.one_of(st.none(), st.integers(min_value=1, max_value=10**9)),
    event_deleted=rarely,
    gone=rarely,
)
def test_plans_never_raise_and_every_write_is_a_valid_request(
    raw: dict[str, Any],
    before: dict[str, Any] | None,
    archived: bool,
    managebac_id: int | None,
    event_deleted: bool,
    gone: bool,
) -> None:
    parsed = parse_student(raw)
    assert isinstance(parsed, IsamsStudent)
    record = None if gone else parsed
    previous = _previous(before, archived, managebac_id) if before is not None else None
    result = plan_student(record, RULES, previous, event_deleted, TODAY)
    _check_writes(result)

    # Applying the plan and planning again writes nothing more: the sync converges.
    again = plan_student(record, RULES, result.state, event_deleted, TODAY)
    assert again.writes == ()
    if result.state is not None and previous is not None:
        assert result.state.managebac_id == previous.managebac_id
    if isinstance(result.actions[0], Unarchive):
        rewrite = result.actions[1]
        assert isinstance(rewrite, Update)
        assert "year_group_id" in rewrite.changes


@PROPERTY_SETTINGS
@given(raw=good_records, secret=st.sampled_from(["Zorgian", "Zorgish", "Zed"]))
def test_warnings_never_carry_the_values(raw: dict[str, Any], secret: str) -> None:
    raw = {**raw, "nationalities": [secret], "languages": [secret], "gender": secret}
    record = parse_student(raw)
    assert isinstance(record, IsamsStudent)
    result = plan_student(record, RULES, None, False, TODAY)
    assert not any(secret in warning for warning in result.warnings)
