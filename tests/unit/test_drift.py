"""Drift rules (docs/design.md §6 "Reconcile"): what counts as drift when the previous state
is what ManageBac+ holds now, adoption, observed links, and look-alikes."""

from __future__ import annotations

from datetime import date

import pytest

from consumers.domain import parents, students, teachers
from consumers.domain.drift import (
    SAME_EMAIL,
    SAME_NAMES_AND_BIRTHDAY,
    SENT_FIELDS,
    LookAlike,
    adoption_plan,
    identity,
    look_alikes,
    observed_fields,
    observed_link,
    same_value,
    trimmed,
)
from consumers.domain.isams import IsamsContact, IsamsEmployee, IsamsStudent
from consumers.domain.plan import (
    Archive,
    Create,
    NoChange,
    Plan,
    PushedState,
    Unarchive,
    Update,
)
from consumers.domain.records import LinkState
from tests.unit import test_parent_mapping, test_student_mapping, test_teacher_mapping


def test_the_sent_fields_are_every_field_the_mapping_sends_but_the_creation_only_ones() -> None:
    student = students.map_student(
        IsamsStudent.model_validate(test_student_mapping.BASE), test_student_mapping.RULES
    )
    parent = parents.map_parent(
        IsamsContact.model_validate(test_parent_mapping.BASE), test_parent_mapping.RULES
    )
    teacher = teachers.map_teacher(IsamsEmployee.model_validate(test_teacher_mapping.BASE))
    assert isinstance(student, students.MappedStudent)
    assert isinstance(parent, parents.MappedParent)
    assert isinstance(teacher, teachers.MappedTeacher)
    assert set(student.fields) == SENT_FIELDS["students"]
    assert set(student.create_only) == {"attendance_start_date"}
    assert set(parent.fields) == SENT_FIELDS["parents"]
    assert set(teacher.fields) == SENT_FIELDS["teachers"]


def test_observed_fields_keep_the_sent_fields_with_a_value() -> None:
    listed = {
        "id": 7,
        "archived": False,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "nickname": "",
        "middle_name": None,
        "year_group_id": 1007,
        "nationalities": [],
        "languages": ["ENG", ""],
        "ui_language": "en",
        "withdrawn_on": "2026-01-01",
        "attendance_start_date": "2024-09-01",
        "parent_ids": [3],
        "gender": True,  # no shape this service sends
    }
    assert observed_fields("students", listed) == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "year_group_id": 1007,
        "languages": ["ENG"],
    }


HELD = PushedState({"first_name": "Ada", "last_name": "Byron", "nickname": "Addie"}, False, 9)


def test_only_fields_that_differ_are_written() -> None:
    plan = Plan((Update({"first_name": "Ada", "last_name": "Lovelace"}),), HELD)
    assert trimmed(plan, HELD.fields, owned=()).actions == (Update({"last_name": "Lovelace"}),)


def test_a_value_this_service_never_wrote_is_not_cleared_but_one_it_wrote_is() -> None:
    plan = Plan((Update({"nickname": ""}),), HELD)
    assert trimmed(plan, HELD.fields, owned={"first_name"}).actions == (NoChange(),)
    assert trimmed(plan, HELD.fields, owned={"nickname"}).actions == (Update({"nickname": ""}),)


def test_an_email_differing_in_case_only_is_no_drift() -> None:
    observed = {"email": "Ada@School.Example"}
    plan = Plan((Update({"email": "ada@school.example"}),), HELD)
    assert trimmed(plan, observed, owned={"email"}).actions == (NoChange(),)
    assert same_value("email", " ADA@school.example", "ada@school.example")
    assert not same_value("first_name", "ada", "Ada")


def test_the_rewrite_after_an_unarchive_stays_whole() -> None:
    rewrite = Update({"first_name": "Ada", "year_group_id": 1007, "nickname": ""})
    plan = Plan((Unarchive(), rewrite), HELD)
    assert trimmed(plan, HELD.fields, owned={"nickname"}).actions == (Unarchive(), rewrite)
    unowned = trimmed(plan, HELD.fields, owned=()).actions
    assert unowned == (Unarchive(), Update({"first_name": "Ada", "year_group_id": 1007}))


def test_archives_and_creates_are_kept_as_they_are() -> None:
    for action in (Archive(date(2026, 7, 1)), Create({"last_name": "L"})):
        assert trimmed(Plan((action,), None), {}, ()).actions == (action,)


def test_adoption_writes_only_what_differs_and_unarchives_first() -> None:
    create = Create(
        {"first_name": "Ada", "email": "ada@school.example", "student_id": "C1"},
        create_only={"attendance_start_date": "2024-09-01"},
    )
    observed = {"first_name": "Addie", "email": "ADA@school.example", "student_id": "C1"}

    active = adoption_plan(create, observed, archived=False, managebac_id=5)
    archived = adoption_plan(create, observed, archived=True, managebac_id=5)
    same = adoption_plan(create, create.payload, archived=False, managebac_id=5)

    assert active.actions == (Update({"first_name": "Ada"}),)
    assert archived.actions == (Unarchive(), Update({"first_name": "Ada"}))
    assert same.actions == (NoChange(),)
    assert active.state == PushedState(create.payload, archived=False, managebac_id=5)


@pytest.mark.parametrize(
    ("links", "remembered", "expected"),
    [
        ({11: "Mother"}, None, LinkState("Mother", True)),
        ({11: None}, LinkState("Mother", True), LinkState("", True)),
        ({}, LinkState("Mother", True), LinkState("Mother", False)),  # deleted in ManageBac+
        ({}, None, None),
        (None, LinkState("Father", True), LinkState("Father", True)),  # not read: the ledger
    ],
)
def test_a_link_is_as_managebac_holds_it(
    links: dict[int, str | None] | None, remembered: LinkState | None, expected: LinkState | None
) -> None:
    assert observed_link(links, 11, remembered) == expected


def test_look_alikes_by_email_case_ignored_or_by_names_and_birthday() -> None:
    ours = [
        identity(1, {"email": "ada@school.example", "first_name": "Ada", "last_name": "Lovelace"}),
        identity(2, {"first_name": "Alan", "last_name": "Turing", "birthday": "1912-06-23"}),
    ]
    theirs = [
        identity(10, {"email": "ADA@School.example"}),
        identity(11, {"first_name": " alan ", "last_name": "TURING", "birthday": "1912-06-23"}),
        identity(12, {"first_name": "Alan", "last_name": "Turing"}),  # no birthday: not enough
        identity(13, {"first_name": "Ada", "last_name": "Lovelace", "birthday": "1815-12-10"}),
    ]
    assert look_alikes(ours, theirs) == [
        LookAlike(10, 1, SAME_EMAIL),
        LookAlike(11, 2, SAME_NAMES_AND_BIRTHDAY),
    ]
