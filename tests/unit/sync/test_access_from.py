"""Where a teacher's ManageBac+ access comes from: `staff.access_from` (docs/design.md §3).

The iSAMS REST API has no access flag: with `event` it comes from staff events (a polled or
backfilled record keeps the last known value), with `all_current` every current employee
has it, with `teaching_staff` those iSAMS marks as teaching staff.
"""

from __future__ import annotations

import pytest

from consumers.domain.isams import IsamsEmployee
from consumers.domain.teachers import ACCESS_UNKNOWN, TeacherRules, access_for
from consumers.outcomes import Outcome
from tests.fakes import FakeSync, school_settings
from tests.unit.sync.records import an_employee


@pytest.mark.parametrize(
    ("access_from", "teaching", "remembered", "expected"),
    [
        ("event", True, None, None),
        ("event", False, True, True),
        ("event", True, False, False),
        ("all_current", False, None, True),
        ("all_current", True, False, True),  # the record, not the events, decides
        ("teaching_staff", True, None, True),
        ("teaching_staff", False, True, False),
    ],
)
def test_access_for_each_rule(
    access_from: str, teaching: bool, remembered: bool | None, expected: bool | None
) -> None:
    rules = TeacherRules(enabled=True, access_from=access_from)  # type: ignore[arg-type]
    employee = IsamsEmployee.model_validate(an_employee(17, isTeachingStaff=teaching))
    assert access_for(rules, employee, remembered) is expected


def with_staff(access_from: str) -> FakeSync:
    sync = FakeSync(school_settings(staff={"access_from": access_from}))
    sync.isams.add_employee(an_employee(17, isTeachingStaff=True))
    sync.isams.add_employee(an_employee(18, isTeachingStaff=False, surname="Hopper"))
    return sync


async def test_with_event_a_record_without_access_is_skipped_with_the_reason() -> None:
    sync = with_staff("event")
    result = await sync.process(sync.staff_event(17, fat=True))  # as a poll or backfill sends
    assert result.outcome is Outcome.SKIPPED
    assert result.reason == ACCESS_UNKNOWN
    assert "staff.access_from" in ACCESS_UNKNOWN  # the reason says what to change
    assert sync.managebac.users_of("teachers") == []


async def test_with_all_current_every_current_employee_is_a_teacher() -> None:
    sync = with_staff("all_current")
    for employee in (17, 18):
        assert (await sync.process(sync.staff_event(employee, fat=True))).outcome is (
            Outcome.CREATED
        )
    assert sorted(u.fields["last_name"] for u in sync.managebac.users_of("teachers")) == [
        "Hopper",
        "Turing",
    ]


async def test_with_teaching_staff_only_teaching_staff_are_teachers() -> None:
    sync = with_staff("teaching_staff")
    await sync.process_all([sync.staff_event(17, fat=True), sync.staff_event(18, fat=True)])
    assert [u.fields["last_name"] for u in sync.managebac.users_of("teachers")] == ["Turing"]

    sync.isams.update_employee(17, isTeachingStaff=False)  # no longer teaches: access goes
    result = await sync.process(sync.staff_event(17, fat=True))
    assert result.outcome is Outcome.ARCHIVED
