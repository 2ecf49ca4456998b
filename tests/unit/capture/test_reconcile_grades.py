"""Reconcile of a school mapping grades (docs/design.md §3, §6): the year group a pupil
should be in is the cohort now in the grade of their iSAMS year, read from ManageBac+."""

from __future__ import annotations

from consumers.capture.plan_report import Act
from consumers.capture.reconcile import run_reconcile
from tests.unit.sync.grades import COHORTS, grades_sync
from tests.unit.sync.records import a_student


async def test_a_pupil_left_in_last_years_cohort_is_moved_to_the_cohort_of_their_grade() -> None:
    sync = grades_sync()
    sync.isams.add_student(a_student("S1", yearGroup=8))
    await sync.process(sync.student_event("S1"))
    sync.managebac.transition()  # year 8 is cohort 2007 now; 2008 moved on to year 9

    report = await run_reconcile(sync.school.ports(), sync.ledger)

    assert sync.managebac.student("C-S1").fields["year_group_id"] == COHORTS[7]
    (item,) = [item for item in report.plan.items if item.action is Act.UPDATE]
    assert [change.name for change in item.changes] == ["year_group_id"]
    assert sync.ledger.row("student", "S1").pushed["year_group_id"] == COHORTS[7]


async def test_a_pupil_of_a_grade_with_two_cohorts_is_skipped_with_the_reason() -> None:
    sync = grades_sync()
    sync.isams.add_student(a_student("S1", yearGroup=8))
    sync.managebac.add_cohort(2099, "secondary;8")

    report = await run_reconcile(sync.school.ports(), sync.ledger)

    (item,) = report.plan.items
    assert item.action is Act.SKIP
    assert item.reason is not None
    assert "2 active year groups of this grade (ids 2008, 2099)" in item.reason
    assert sync.managebac.users_of("students") == []
