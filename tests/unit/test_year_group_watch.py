"""The consume process's year-group watch on the fakes: the cohorts read on a timer, the
students placed when what the grades resolve to changes (and at start-up only when that is
not what they were last placed by), moves on the bulk lane, and a grade without a single
cohort said in a metric, a ledger row for `explain` and the readiness detail."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry

from consumers.adapters.budget import bulk_lane
from consumers.domain.records import Status
from consumers.ops.explain import explain_record
from consumers.ports import ManagebacUnavailableError
from consumers.sync.service import SyncService
from consumers.year_groups import YEAR_GROUPS, YearGroupWatch, bulk_work
from tests.fakes import SCHOOL_ID, FakeSync, school_settings
from tests.unit.sync.grades import COHORTS, GRADES
from tests.unit.sync.records import a_student


async def school_of_three() -> FakeSync:
    """A grades school with one pupil in each of years 7, 8 and 9, all synced, and a second
    school with fixed year groups."""
    fixed = school_settings("fixed-school")
    sync = FakeSync(school_settings(mappings={"year_groups": {}, "grades": GRADES}), fixed)
    for year, cohort_id in COHORTS.items():
        sync.managebac.add_cohort(cohort_id, f"secondary;{year}")
    for number, year in enumerate((7, 8, 9), start=1):
        sync.isams.add_student(a_student(f"S{number}", yearGroup=year))
        await sync.process(sync.student_event(f"S{number}"))
    return sync


def watch_of(sync: FakeSync, registry: CollectorRegistry, interval: float = 60.0) -> YearGroupWatch:
    return YearGroupWatch(sync.service.contexts, sync.ledger, registry=registry, interval=interval)


def unresolved(registry: CollectorRegistry, grade: str) -> float | None:
    return registry.get_sample_value(
        "isams_sync_year_group_unresolved", {"school": SCHOOL_ID, "grade": grade}
    )


def placed_row(sync: FakeSync) -> dict[str, object]:
    return dict(sync.ledger.row("school", YEAR_GROUPS).pushed)


async def test_only_schools_mapping_grades_are_watched() -> None:
    sync = await school_of_three()

    assert watch_of(sync, CollectorRegistry()).schools == (SCHOOL_ID,)


async def test_the_first_cycle_places_the_students_and_stores_the_placement() -> None:
    sync = await school_of_three()
    watch = watch_of(sync, CollectorRegistry())

    run = await watch.cycle(SCHOOL_ID)

    assert run is not None
    assert run.due == 0  # created by this process's own changes, already in place
    assert placed_row(sync) == {"placed": {"7": 2007, "8": 2008, "9": 2009}}
    assert await watch.cycle(SCHOOL_ID) is None  # nothing changed: nobody is looked at


async def test_a_restart_places_nobody_when_the_stored_placement_still_holds() -> None:
    sync = await school_of_three()
    await watch_of(sync, CollectorRegistry()).cycle(SCHOOL_ID)
    restarted = SyncService({SCHOOL_ID: sync.school.ports()}, sync.ledger)
    reads = sync.isams.reads("all_students")

    run = await YearGroupWatch(restarted.contexts, sync.ledger, registry=CollectorRegistry()).cycle(
        SCHOOL_ID
    )

    assert run is None
    assert sync.isams.reads("all_students") == reads


async def test_a_transition_while_no_consumer_ran_is_placed_at_start_up() -> None:
    sync = await school_of_three()
    await watch_of(sync, CollectorRegistry()).cycle(SCHOOL_ID)
    sync.managebac.transition()
    restarted = SyncService({SCHOOL_ID: sync.school.ports()}, sync.ledger)

    registry = CollectorRegistry()
    run = await YearGroupWatch(restarted.contexts, sync.ledger, registry=registry).cycle(SCHOOL_ID)

    assert run is not None
    assert run.moved == 3
    assert placed_row(sync) == {"placed": {"7": 2010, "8": 2007, "9": 2008}}
    moved = registry.get_sample_value(
        "isams_sync_year_group_placements_total", {"school": SCHOOL_ID, "outcome": "updated"}
    )
    assert moved == 3


async def test_the_moves_are_sent_on_the_bulk_lane() -> None:
    sync = await school_of_three()
    watch = watch_of(sync, CollectorRegistry())
    await watch.cycle(SCHOOL_ID)
    lanes: list[bool] = []
    update = sync.managebac.update

    async def recording_update(*args: object, **kwargs: object) -> None:
        lanes.append(bulk_lane.get())
        await update(*args, **kwargs)  # type: ignore[arg-type]  # passed on as received

    sync.managebac.update = recording_update  # type: ignore[method-assign]  # a spy on the fake
    sync.managebac.transition()

    await watch.cycle(SCHOOL_ID)

    assert lanes == [True, True, True]
    assert bulk_lane.get() is False  # the lane is left when the moves are done


def test_bulk_work_sets_the_lane_only_inside() -> None:
    with bulk_work():
        assert bulk_lane.get() is True
    assert bulk_lane.get() is False


async def test_a_grade_with_two_cohorts_is_a_metric_a_row_for_explain_and_a_readiness_detail() -> (
    None
):
    sync = await school_of_three()
    registry = CollectorRegistry()
    watch = watch_of(sync, registry)
    await watch.cycle(SCHOOL_ID)
    assert unresolved(registry, "secondary;8") == 0
    assert watch.problems() == {}
    sync.managebac.add_cohort(2099, "secondary;8")

    await watch.cycle(SCHOOL_ID)

    assert unresolved(registry, "secondary;8") == 1
    assert unresolved(registry, "secondary;7") == 0
    problems = watch.problems()
    assert list(problems) == [SCHOOL_ID]  # the fixed-ids school is not named
    assert list(problems[SCHOOL_ID]) == ["secondary;8"]
    row = sync.ledger.row("school", YEAR_GROUPS)
    assert row.status is Status.FAILED
    text = await explain_record(sync.ledger, SCHOOL_ID, "student", "S2")
    assert "school year groups: grade secondary;8: ManageBac+ has 2 active year groups" in text

    sync.managebac.cohort(2099)["archived"] = True
    sync.managebac.cohort(2099)["updated_at"] = sync.managebac.cohort(2008)["updated_at"]
    await watch.cycle(SCHOOL_ID)  # read again: only one active cohort in year 8 again
    assert unresolved(registry, "secondary;8") == 0
    assert watch.problems() == {}
    assert sync.ledger.row("school", YEAR_GROUPS).status is Status.SYNCED
    assert "school year groups" not in await explain_record(sync.ledger, SCHOOL_ID, "student", "S2")


async def test_running_it_reads_on_the_timer_and_places_after_a_transition() -> None:
    sync = await school_of_three()
    watch = watch_of(sync, CollectorRegistry(), interval=0.05)
    await watch.start()
    try:
        sync.managebac.transition()
        deadline = time.monotonic() + 5
        while sync.managebac.student("C-S1").fields["year_group_id"] != 2010:
            assert time.monotonic() < deadline, "the transition was not placed within 5 s"
            await asyncio.sleep(0.02)
    finally:
        await watch.stop()

    assert sync.managebac.student("C-S2").fields["year_group_id"] == COHORTS[7]
    assert sync.managebac.student("C-S3").fields["year_group_id"] == COHORTS[8]


async def test_a_failing_read_keeps_the_watch_running() -> None:
    sync = await school_of_three()
    watch = watch_of(sync, CollectorRegistry(), interval=0.05)
    sync.managebac.failing = ManagebacUnavailableError("down")
    await watch.start()
    try:
        await asyncio.sleep(0.2)
        sync.managebac.failing = None
        sync.managebac.transition()
        deadline = time.monotonic() + 5
        while sync.managebac.student("C-S1").fields["year_group_id"] != 2010:
            assert time.monotonic() < deadline, "the watch stopped after a failed read"
            await asyncio.sleep(0.02)
    finally:
        await watch.stop()
