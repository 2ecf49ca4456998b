"""Placement on the fakes: once the cohorts moved grade, every synced pupil not in the cohort
their iSAMS year resolves to is moved, one PATCH each, inside the lane given; a run cut
short is finished by the next, which finds the rest from state (docs/design.md §3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from consumers.domain.records import Status
from consumers.outcomes import Outcome
from consumers.ports import ManagebacBlockedError, ManagebacUnavailableError
from consumers.sync.placement import place_students
from consumers.sync.service import SyncService
from tests.fakes import FakeSync
from tests.unit.sync.grades import COHORTS, directory_of, grades_sync
from tests.unit.sync.records import T1, a_student

NEW_ENTRY = 2010  # the cohort the transition starts in year 7 (highest id + 1)


async def synced_school(years: dict[str, int]) -> FakeSync:
    """Return a grades school whose pupils (schoolId -> NC year) are all in ManageBac+."""
    sync = grades_sync()
    for school_id, year in years.items():
        sync.isams.add_student(a_student(school_id, yearGroup=year))
        await sync.process(sync.student_event(school_id))
    return sync


async def test_after_the_transition_each_pupil_moves_to_the_cohort_of_their_grade() -> None:
    sync = await synced_school({"S1": 7, "S2": 8, "S3": 9})
    mark = len(sync.managebac.requests)
    sync.managebac.transition()  # 2009 archived, 2007 -> year 8, 2008 -> year 9, 2010 new
    await directory_of(sync).refresh()

    run = await place_students(sync.service.contexts[sync.school.id])

    assert (run.checked, run.due, run.moved, run.failed) == (3, 3, 3, 0)
    expected = {"C-S1": NEW_ENTRY, "C-S2": COHORTS[7], "C-S3": COHORTS[8]}
    moves = sync.managebac.requests[mark:]
    assert [(r.method, r.body) for r in moves] == [
        (
            "update",
            {"year_group_id": expected[sync.managebac.user("students", r.id).fields["student_id"]]},
        )
        for r in moves
    ]
    assert len(moves) == 3  # one PATCH each, of the year group alone
    for school_id in ("S1", "S2", "S3"):
        student = sync.managebac.student(f"C-{school_id}")
        assert student.fields["year_group_id"] == expected[f"C-{school_id}"]
        assert (
            sync.ledger.row("student", school_id).pushed["year_group_id"]
            == (expected[f"C-{school_id}"])
        )

    again = await place_students(sync.service.contexts[sync.school.id])
    assert (again.due, again.moved) == (0, 0)
    assert len(sync.managebac.requests) == mark + 3


async def test_a_pupil_isams_moved_up_already_stays_where_the_transition_took_their_cohort() -> (
    None
):
    sync = await synced_school({"S1": 7, "S2": 8})
    sync.isams.update_student("S1", yearGroup=8, lastUpdated=T1)  # iSAMS first …
    await sync.process(sync.student_event("S1"))
    assert sync.managebac.student("C-S1").fields["year_group_id"] == COHORTS[8]
    sync.managebac.transition()  # … then ManageBac+: year 8 is cohort 2007 now
    await directory_of(sync).refresh()

    run = await place_students(sync.service.contexts[sync.school.id])

    assert run.moved == 2
    assert sync.managebac.student("C-S1").fields["year_group_id"] == COHORTS[7]
    assert sync.managebac.student("C-S2").fields["year_group_id"] == COHORTS[7]


async def test_the_moves_run_inside_the_lane_one_each() -> None:
    sync = await synced_school({"S1": 7, "S2": 8, "S3": 9})
    sync.managebac.transition()
    await directory_of(sync).refresh()
    entered: list[int] = []

    @contextmanager
    def lane() -> Iterator[None]:
        entered.append(len(sync.managebac.requests))
        yield

    await place_students(sync.service.contexts[sync.school.id], lane=lane)

    assert len(entered) == 3


async def test_a_run_cut_short_is_finished_after_a_restart_moving_only_the_rest() -> None:
    years = {f"S{n}": 7 + n % 3 for n in range(1, 7)}
    sync = await synced_school(years)
    sync.managebac.transition()
    await directory_of(sync).refresh()
    mark = len(sync.managebac.requests)
    entered = 0

    @contextmanager
    def failing_after_three() -> Iterator[None]:
        nonlocal entered
        entered += 1
        if entered > 3:
            sync.managebac.failing = ManagebacUnavailableError("ManageBac+ went down")
        yield

    cut = await place_students(
        sync.service.contexts[sync.school.id], lane=failing_after_three, concurrency=1
    )
    # The fourth move fails and ends the run: the last two are not even tried.
    assert (cut.due, cut.moved, cut.failed, cut.left, cut.retry) == (6, 3, 1, 2, True)
    assert len(sync.managebac.requests) == mark + 3

    sync.managebac.failing = None
    restarted = SyncService(
        {sync.school.id: sync.school.ports()}, sync.ledger
    )  # a new process: nothing in memory but the ledger
    context = restarted.contexts[sync.school.id]
    assert context.year_groups is not None
    await context.year_groups.refresh()
    rest = await place_students(context)

    assert (rest.due, rest.moved, rest.failed, rest.retry) == (3, 3, 0, False)
    moved = [r.id for r in sync.managebac.requests[mark:] if r.method == "update"]
    assert len(moved) == len(set(moved)) == 6  # each pupil moved exactly once


async def test_leavers_and_archived_pupils_are_not_placed() -> None:
    sync = await synced_school({"S1": 7, "S2": 8})
    sync.isams.leave("S2", on=date(2027, 7, 16))
    await sync.process(sync.student_event("S2"))
    assert sync.ledger.row("student", "S2").status is Status.ARCHIVED
    sync.managebac.transition()
    await directory_of(sync).refresh()

    run = await place_students(sync.service.contexts[sync.school.id])

    assert (run.checked, run.due) == (1, 1)
    assert sync.managebac.student("C-S2").archived is True


async def test_pupils_skipped_for_their_grade_are_created_once_it_has_a_cohort() -> None:
    sync = grades_sync({7: "secondary;7", 10: "secondary;10"})
    sync.isams.add_student(a_student("S1", yearGroup=10))
    skipped = await sync.process(sync.student_event("S1"))
    assert skipped.outcome is Outcome.SKIPPED
    sync.managebac.add_cohort(2110, "secondary;10")
    await directory_of(sync).refresh()

    run = await place_students(sync.service.contexts[sync.school.id])

    assert run.outcomes == {"created": 1}
    assert sync.managebac.student("C-S1").fields["year_group_id"] == 2110


async def test_an_archived_cohort_seen_late_is_refused_read_again_and_the_pupil_still_moves() -> (
    None
):
    sync = await synced_school({"S1": 8})
    sync.managebac.transition()  # 2007 into year 8 …
    sync.managebac.transition()  # … and on into year 9 a year later; 2010 into year 8
    await directory_of(sync).refresh()
    sync.managebac.cohort(2010)["archived"] = True  # archived after the read, by hand
    sync.managebac.add_cohort(2200, "secondary;8")

    run = await place_students(sync.service.contexts[sync.school.id])

    assert run.moved == 1
    assert sync.managebac.student("C-S1").fields["year_group_id"] == 2200


async def test_a_refused_token_ends_the_run_at_the_first_refusal() -> None:
    sync = await synced_school({f"S{n}": 7 for n in range(1, 6)})
    sync.managebac.transition()
    await directory_of(sync).refresh()
    sync.managebac.failing = ManagebacBlockedError(401, "the token was refused (401)")

    run = await place_students(sync.service.contexts[sync.school.id], concurrency=1)

    assert (run.due, run.failed, run.left, run.retry) == (5, 1, 4, True)


async def test_a_pupil_managebac_refuses_does_not_stop_the_others() -> None:
    sync = await synced_school({"S1": 7, "S2": 7, "S3": 7})
    sync.managebac.transition()
    await directory_of(sync).refresh()
    # Another user took S2's e-mail in ManageBac+ meanwhile; iSAMS changed it too.
    sync.managebac.seed("teachers", email="taken@school.example", last_name="T")
    sync.isams.update_student("S2", schoolEmailAddress="taken@school.example", lastUpdated=T1)

    run = await place_students(sync.service.contexts[sync.school.id], concurrency=1)

    assert (run.due, run.moved, run.failed, run.left, run.retry) == (3, 2, 1, 0, False)
    row = sync.ledger.row("student", "S2")
    assert row.pushed["year_group_id"] == COHORTS[7]  # not moved …
    assert row.reason is not None  # … and `explain` says why
    assert row.reason.startswith("not moved to the year group of their grade: managebac-rejected")
    assert "has already been taken" in row.reason
