"""The pure year-group rules: grade codes, cohorts as ManageBac+ lists them, and each mapped
NC year's year group resolved from them (docs/design.md §3: the one active cohort of the
grade; none, or two, and the year has none, with the reason)."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.domain.records import Status, SyncRecord
from consumers.domain.year_groups import (
    NOT_READ,
    Cohort,
    GradeCode,
    merge,
    placement_due,
    read_cohort,
    resolve,
    unread,
)

MYP8 = GradeCode("myp", 8)
DP12 = GradeCode("diploma", 12)
GRADES = {7: MYP8, 11: DP12}


def cohort(cohort_id: int, grade: GradeCode, archived: bool = False) -> Cohort:
    return Cohort(cohort_id, grade, archived)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("myp;8", GradeCode("myp", 8)),
        ("secondary;13", GradeCode("secondary", 13)),
        ("early_years;-1", GradeCode("early_years", -1)),
        (" myp;8 ", GradeCode("myp", 8)),
    ],
)
def test_a_grade_code_is_a_program_code_and_a_grade_number(text: str, parsed: GradeCode) -> None:
    assert GradeCode.parse(text) == parsed
    assert str(parsed) == text.strip()


@pytest.mark.parametrize("text", ["myp", "myp;", ";8", "myp;eight", "myp;8;9", "my p;8", ""])
def test_anything_else_is_no_grade_code(text: str) -> None:
    assert GradeCode.parse(text) is None


def test_a_cohort_is_read_from_the_year_groups_list_leniently() -> None:
    item: dict[str, Any] = {
        "id": 10209272,
        "name": "IB MYP Group of 2029 (Year 2)",
        "program_code": "myp",
        "grade": "Year 2",
        "grade_number": 8,
        "graduation_year": 2029,
        "archived": False,
    }
    assert read_cohort(item) == Cohort(10209272, MYP8, archived=False)
    assert read_cohort({**item, "id": "10209272", "grade_number": "8"}) == Cohort(
        10209272, MYP8, archived=False
    )
    assert read_cohort({**item, "archived": True}) == Cohort(10209272, MYP8, archived=True)


@pytest.mark.parametrize(
    "broken",
    [{"id": None}, {"program_code": ""}, {"program_code": None}, {"grade_number": None}],
    ids=["no id", "empty program", "no program", "no grade number"],
)
def test_a_cohort_without_id_program_or_grade_number_is_left_out(broken: dict[str, Any]) -> None:
    item = {"id": 1, "program_code": "myp", "grade_number": 8, "archived": False, **broken}
    assert read_cohort(item) is None


def test_the_one_active_cohort_of_a_grade_is_its_year_group() -> None:
    resolution = resolve(GRADES, [cohort(1, MYP8), cohort(2, DP12), cohort(3, GradeCode("myp", 9))])

    assert dict(resolution.ids) == {7: 1, 11: 2}
    assert resolution.problems == {}
    assert resolution.reasons() == {}
    assert resolution.described_problems() == {}


def test_an_archived_cohort_of_the_grade_is_passed_over_for_the_active_one() -> None:
    resolution = resolve(GRADES, [cohort(1, MYP8, archived=True), cohort(4, MYP8), cohort(2, DP12)])

    assert resolution.ids[7] == 4


def test_a_grade_with_only_archived_cohorts_has_no_year_group() -> None:
    resolution = resolve(GRADES, [cohort(5, MYP8, archived=True), cohort(1, MYP8, archived=True)])

    assert 7 not in resolution.ids
    assert resolution.problems[MYP8].kind == "no_active"
    assert resolution.problems[MYP8].cohort_ids == (1, 5)
    reason = resolution.reason(7)
    assert reason is not None
    assert reason.startswith("yearGroup 7 maps to grade myp;8 (mappings.grades), but ")
    assert "no active year group of this grade, only archived ones (ids 1, 5)" in reason


def test_two_active_cohorts_of_one_grade_name_both_and_resolve_to_neither() -> None:
    resolution = resolve(GRADES, [cohort(9, MYP8), cohort(3, MYP8), cohort(2, DP12)])

    assert dict(resolution.ids) == {11: 2}
    problem = resolution.problems[MYP8]
    assert (problem.kind, problem.cohort_ids) == ("several_active", (3, 9))
    assert resolution.described_problems() == {
        "myp;8": "grade myp;8: ManageBac+ has 2 active year groups of this grade (ids 3, 9); "
        "archive the extra one(s) in ManageBac+"
    }


def test_a_grade_no_cohort_has_is_an_unknown_grade_of_a_known_program() -> None:
    resolution = resolve(GRADES, [cohort(3, GradeCode("myp", 9)), cohort(2, DP12)])

    assert 7 not in resolution.ids
    assert resolution.problems[MYP8].kind == "unknown_grade"
    assert "no year group of this grade" in resolution.problems[MYP8].reason


def test_a_grade_of_a_program_no_cohort_has_is_an_unknown_program() -> None:
    resolution = resolve({7: GradeCode("mpy", 8)}, [cohort(1, MYP8)])

    assert resolution.ids == {}
    problem = resolution.problems[GradeCode("mpy", 8)]
    assert problem.kind == "unknown_program"
    assert "no year group of the program 'mpy'" in problem.reason


def test_none_at_all_leaves_every_year_without_a_year_group() -> None:
    resolution = resolve(GRADES, [])

    assert resolution.ids == {}
    assert set(resolution.reasons()) == {7, 11}


def test_after_the_transition_a_year_resolves_to_the_cohort_that_moved_into_its_grade() -> None:
    before = resolve(GRADES, [cohort(1, GradeCode("myp", 7)), cohort(2, MYP8), cohort(3, DP12)])
    moved = [
        cohort(1, MYP8),  # same id, one grade up
        cohort(2, GradeCode("myp", 9)),
        cohort(3, GradeCode("diploma", 13)),
        cohort(4, GradeCode("myp", 7)),  # the new entry cohort
        cohort(5, DP12),
    ]
    after = resolve(GRADES, moved)

    assert dict(before.ids) == {7: 2, 11: 3}
    assert dict(after.ids) == {7: 1, 11: 5}
    assert after != before


def test_years_not_mapped_have_no_reason_and_an_unread_directory_resolves_nothing() -> None:
    resolution = resolve(GRADES, [cohort(1, MYP8), cohort(2, DP12)])
    assert resolution.reason(9) is None

    nothing = unread(GRADES)
    assert nothing.ids == {}
    assert nothing.reason(7) == f"yearGroup 7 maps to grade myp;8 (mappings.grades), but {NOT_READ}"
    assert nothing.described_problems() == {"diploma;12": NOT_READ, "myp;8": NOT_READ}


def test_merging_a_modified_since_read_replaces_the_changed_cohorts_only() -> None:
    view = {1: cohort(1, GradeCode("myp", 7)), 2: cohort(2, MYP8)}

    merged = merge(view, [cohort(2, MYP8, archived=True), cohort(3, GradeCode("myp", 7))])

    assert merged == {
        1: cohort(1, GradeCode("myp", 7)),
        2: cohort(2, MYP8, archived=True),
        3: cohort(3, GradeCode("myp", 7)),
    }
    assert view[2].archived is False  # the held view is not changed in place


def row(
    status: Status, *, managebac_id: int | None, pushed: int | None, archived: bool = False
) -> SyncRecord:
    return SyncRecord(
        school="s",
        kind="student",
        isams_id="S1",
        status=status,
        managebac_id=managebac_id,
        pushed={} if pushed is None else {"year_group_id": pushed, "last_name": "L"},
        archived=archived,
    )


RESOLVED = resolve(
    {7: MYP8, 8: GradeCode("myp", 9)}, [cohort(1, MYP8), cohort(2, GradeCode("myp", 9))]
)


@pytest.mark.parametrize(
    ("record", "year", "due"),
    [
        (row(Status.SYNCED, managebac_id=50, pushed=2), 7, 1),  # its cohort moved on
        (row(Status.SYNCED, managebac_id=50, pushed=None), 7, 1),  # no year group pushed yet
        (row(Status.SYNCED, managebac_id=50, pushed=1), 7, None),  # where it belongs
        (row(Status.SYNCED, managebac_id=50, pushed=2), 13, None),  # year not mapped
        (row(Status.SYNCED, managebac_id=50, pushed=2), None, None),  # no year in iSAMS
        (row(Status.ARCHIVED, managebac_id=50, pushed=None, archived=True), 7, None),
        (row(Status.SKIPPED, managebac_id=None, pushed=None), 7, 1),  # skipped, never created
        (row(Status.FAILED, managebac_id=None, pushed=None), 7, None),
        (None, 7, None),  # never seen: not this service's pupil yet
    ],
    ids=[
        "moved-on",
        "none-pushed",
        "in-place",
        "unmapped-year",
        "no-year",
        "archived",
        "skipped-never-created",
        "failed",
        "never-seen",
    ],
)
def test_which_pupils_a_placement_re_plans(
    record: SyncRecord | None, year: int | None, due: int | None
) -> None:
    assert placement_due(record, year, RESOLVED) == due


def test_a_year_without_a_single_cohort_moves_nobody() -> None:
    ambiguous = resolve({7: MYP8}, [cohort(1, MYP8), cohort(3, MYP8)])

    assert placement_due(row(Status.SYNCED, managebac_id=50, pushed=2), 7, ambiguous) is None
