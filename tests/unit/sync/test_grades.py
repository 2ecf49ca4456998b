"""Students of a school mapping grades, on the fakes: each one in the cohort now in the grade
their iSAMS year maps to, skipped with the reason when that grade has none or two, and a
refused year group read again, planned again and tried once more (docs/design.md §3)."""

from __future__ import annotations

import pytest

from consumers.domain.records import Status
from consumers.ops.explain import describe
from consumers.outcomes import Outcome, PermanentFailureError, TransientFailureError
from tests.fakes import FakeSync, school_settings
from tests.unit.sync.grades import COHORTS, directory_of, grades_sync
from tests.unit.sync.records import T1, a_student


async def test_a_pupil_is_created_in_the_cohort_now_in_the_grade_of_their_year() -> None:
    sync = grades_sync()
    sync.isams.add_student(a_student("S1", yearGroup=8))

    result = await sync.process(sync.student_event("S1"))

    assert result.outcome is Outcome.CREATED
    assert sync.managebac.student("C-S1").fields["year_group_id"] == COHORTS[8]
    assert sync.ledger.row("student", "S1").pushed["year_group_id"] == COHORTS[8]


async def test_the_year_groups_are_read_once_for_many_changes_within_a_minute() -> None:
    sync = grades_sync()
    for number in range(1, 6):
        sync.isams.add_student(a_student(f"S{number}"))

    for number in range(1, 6):
        await sync.process(sync.student_event(f"S{number}"))

    assert [method for method, _, _ in sync.managebac.lookups].count("year_groups") == 1


async def test_a_year_not_in_grades_is_skipped_naming_mappings_grades() -> None:
    sync = grades_sync()
    sync.isams.add_student(a_student("S1", yearGroup=12))

    result = await sync.process(sync.student_event("S1"))

    assert result.outcome is Outcome.SKIPPED
    assert result.reason == "yearGroup 12 is not in mappings.grades"
    assert sync.managebac.writes == []


async def test_two_active_cohorts_of_the_grade_skip_the_pupil_naming_both() -> None:
    sync = grades_sync()
    sync.managebac.add_cohort(2099, "secondary;7")
    sync.isams.add_student(a_student("S1"))

    result = await sync.process(sync.student_event("S1"))

    assert result.outcome is Outcome.SKIPPED
    assert result.reason == (
        "yearGroup 7 maps to grade secondary;7 (mappings.grades), but grade secondary;7: "
        "ManageBac+ has 2 active year groups of this grade (ids 2007, 2099); archive the "
        "extra one(s) in ManageBac+"
    )
    assert sync.managebac.writes == []
    row = sync.ledger.row("student", "S1")
    assert row.status is Status.SKIPPED
    assert "2 active year groups" in describe(row, "student", "S1")


@pytest.mark.parametrize(
    ("grade", "why"),
    [
        ("secondary;10", "ManageBac+ has no year group of this grade"),
        ("myp;8", "ManageBac+ has no year group of the program 'myp'"),
    ],
    ids=["unknown-grade", "unknown-program"],
)
async def test_a_grade_no_cohort_has_skips_the_pupil_with_the_reason(grade: str, why: str) -> None:
    sync = grades_sync({7: grade})
    sync.isams.add_student(a_student("S1"))

    result = await sync.process(sync.student_event("S1"))

    assert result.outcome is Outcome.SKIPPED
    assert result.reason is not None
    assert why in result.reason
    assert sync.managebac.writes == []


async def test_a_synced_pupil_whose_grade_turns_ambiguous_is_skipped_and_left_as_they_are() -> None:
    sync = grades_sync()
    sync.isams.add_student(a_student("S1"))
    await sync.process(sync.student_event("S1"))
    sync.managebac.add_cohort(2099, "secondary;7")
    await directory_of(sync).refresh()
    sync.isams.update_student("S1", forename="Augusta", lastUpdated=T1)
    mark = len(sync.managebac.requests)

    result = await sync.process(sync.student_event("S1"))

    assert result.outcome is Outcome.SKIPPED
    assert result.reason is not None
    assert "2 active year groups" in result.reason
    assert sync.managebac.writes_since(mark) == []
    row = sync.ledger.row("student", "S1")
    assert (row.status, row.pushed["year_group_id"]) == (Status.SYNCED, COHORTS[7])


async def test_a_cohort_archived_since_the_read_is_read_again_planned_again_and_retried_once() -> (
    None
):
    sync = grades_sync()
    await directory_of(sync).refresh()  # read: year 9 is cohort 2009
    sync.managebac.transition()  # 2009 graduates (archived); 2008 moves up into year 9
    sync.isams.add_student(a_student("S1", yearGroup=9))

    result = await sync.process(sync.student_event("S1"))

    assert result.outcome is Outcome.CREATED
    refused, created = sync.managebac.requests
    assert (refused.method, refused.refused, refused.body["year_group_id"]) == (
        "create",
        True,
        COHORTS[9],
    )
    assert (created.refused, created.body["year_group_id"]) == (False, COHORTS[8])
    assert sync.managebac.student("C-S1").fields["year_group_id"] == COHORTS[8]
    assert [method for method, _, _ in sync.managebac.lookups].count("year_groups") == 2


async def test_a_year_group_refused_again_after_a_read_waits_for_a_retry_not_the_dlq() -> None:
    sync = grades_sync()
    sync.managebac.listing = [dict(cohort) for cohort in sync.managebac.cohorts]  # lags behind
    sync.managebac.transition()
    sync.isams.add_student(a_student("S1", yearGroup=9))

    with pytest.raises(TransientFailureError, match="refused the year_group_id again"):
        await sync.process(sync.student_event("S1"))

    assert [r.refused for r in sync.managebac.requests] == [True, True]
    assert sync.managebac.users_of("students") == []


async def test_with_fixed_year_groups_a_refused_id_goes_to_the_dlq_as_before() -> None:
    sync = FakeSync(school_settings())  # mappings.year_groups: 7 -> 1007
    sync.managebac.add_cohort(1007, "secondary;7", archived=True)
    sync.isams.add_student(a_student("S1"))

    with pytest.raises(PermanentFailureError) as refused:
        await sync.process(sync.student_event("S1"))

    assert refused.value.error_class == "managebac-rejected"
    assert "year_group_id" in refused.value.detail
    assert sync.managebac.lookups == []  # no year groups read: the ids are fixed
