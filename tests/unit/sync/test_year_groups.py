"""The year-group directory on the fake ManageBac+: a whole read first, then the cohorts
changed since (merged in), a whole read again now and then, at most a minute old when
used, one read for changes refused together, and a word to listeners when what the grades
resolve to changes (docs/design.md §3, `mappings.grades`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from consumers.domain.year_groups import GradeCode
from consumers.ports import ManagebacUnavailableError
from consumers.sync.year_groups import YearGroupDirectory
from tests.fakes import FakeManagebac

T0 = datetime(2027, 7, 20, 12, 0, tzinfo=UTC)
GRADES = {7: GradeCode("secondary", 7), 8: GradeCode("secondary", 8)}


class Clocks:
    """A monotonic clock and a wall clock that tests move by hand, together."""

    def __init__(self) -> None:
        self.seconds = 1000.0
        self.wall = T0

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        self.wall += timedelta(seconds=seconds)


def school() -> FakeManagebac:
    """Secondary years 7 to 9, cohorts 2007 to 2009, and one that left a year ago."""
    managebac = FakeManagebac()
    managebac.add_cohort(2006, "secondary;9", archived=True, at=T0 - timedelta(days=300))
    for year in (7, 8, 9):
        managebac.add_cohort(2000 + year, f"secondary;{year}", at=T0 - timedelta(days=30))
    return managebac


def directory(
    managebac: FakeManagebac, clocks: Clocks, **options: float | timedelta
) -> YearGroupDirectory:
    return YearGroupDirectory(
        "unit-school",
        GRADES,
        managebac,
        clock=clocks.monotonic,
        wall=clocks.now,
        **options,  # type: ignore[arg-type]  # max_age, full_every: floats; overlap: timedelta
    )


def reads(managebac: FakeManagebac) -> list[str]:
    """The `modified_since` of each year-groups read ("" for a whole read)."""
    return [since for method, _, since in managebac.lookups if method == "year_groups"]


async def test_nothing_resolves_before_the_first_read_which_takes_every_cohort() -> None:
    managebac, clocks = school(), Clocks()
    groups = directory(managebac, clocks)
    assert groups.resolution.read is False
    assert groups.resolution.ids == {}

    resolution = await groups.refresh()

    assert dict(resolution.ids) == {7: 2007, 8: 2008}
    assert reads(managebac) == [""]
    assert set(groups.cohorts) == {2006, 2007, 2008, 2009}


async def test_later_reads_ask_for_changes_since_the_last_one_and_merge_them_in() -> None:
    managebac, clocks = school(), Clocks()
    groups = directory(managebac, clocks, overlap=timedelta(0))
    await groups.refresh()
    clocks.advance(60)
    managebac.transition(at=clocks.wall)  # 2009 archived, 2007 and 2008 up, 2010 new in 7

    resolution = await groups.refresh()

    assert reads(managebac) == ["", str(T0)]
    assert dict(resolution.ids) == {7: 2010, 8: 2007}
    # The cohort archived a year ago was not in the second answer, and is still held.
    assert groups.cohorts[2006].archived is True
    assert groups.cohorts[2009].archived is True  # archived now: seen in a changes read


async def test_a_changes_read_starts_a_little_before_the_last_read_against_clock_skew() -> None:
    managebac, clocks = school(), Clocks()
    groups = directory(managebac, clocks)
    await groups.refresh()
    clocks.advance(60)

    await groups.refresh()

    assert reads(managebac)[1] == str(T0 - timedelta(minutes=2))


async def test_a_whole_read_comes_again_after_full_every_and_drops_deleted_cohorts() -> None:
    managebac, clocks = school(), Clocks()
    groups = directory(managebac, clocks, full_every=3600)
    await groups.refresh()
    managebac.cohorts = [c for c in managebac.cohorts if c["id"] != 2006]  # deleted
    clocks.advance(1800)
    await groups.refresh()
    assert 2006 in groups.cohorts  # a changes read cannot see a deletion

    clocks.advance(1800)
    await groups.refresh()

    assert reads(managebac)[-1] == ""
    assert 2006 not in groups.cohorts


async def test_a_view_under_a_minute_old_is_used_as_it_is_and_an_older_one_is_read_again() -> None:
    managebac, clocks = school(), Clocks()
    groups = directory(managebac, clocks)
    await groups.fresh()
    clocks.advance(59)
    await groups.fresh()
    assert len(reads(managebac)) == 1

    clocks.advance(2)
    await groups.fresh()

    assert len(reads(managebac)) == 2


async def test_a_failed_read_keeps_the_view_held_and_with_none_the_failure_is_the_callers() -> None:
    managebac, clocks = school(), Clocks()
    groups = directory(managebac, clocks)
    managebac.failing = ManagebacUnavailableError("down")
    with pytest.raises(ManagebacUnavailableError):
        await groups.fresh()

    managebac.failing = None
    await groups.fresh()
    clocks.advance(120)
    managebac.failing = ManagebacUnavailableError("down")

    resolution = await groups.fresh()

    assert dict(resolution.ids) == {7: 2007, 8: 2008}


async def test_changes_refused_together_share_one_read() -> None:
    managebac, clocks = school(), Clocks()
    groups = directory(managebac, clocks)
    await groups.refresh()
    planned_at = groups.now()
    clocks.advance(1)

    await asyncio.gather(*(groups.refresh(after=planned_at) for _ in range(5)))

    assert len(reads(managebac)) == 2  # the first read, and one for the five refusals
    await groups.refresh(after=planned_at - 10)
    assert len(reads(managebac)) == 2  # a read after that moment is there already


async def test_listeners_hear_of_a_change_of_the_resolution_only() -> None:
    managebac, clocks = school(), Clocks()
    groups = directory(managebac, clocks)
    heard: list[int] = []
    groups.on_change(lambda: heard.append(groups.generation))
    await groups.refresh()
    clocks.advance(60)
    await groups.refresh()  # nothing moved
    assert heard == [1]

    renamed = managebac.cohort(2008)
    renamed["name"], renamed["updated_at"] = "Secondary Group of 2031", clocks.wall.isoformat()
    clocks.advance(60)
    await groups.refresh()  # changed, but not in what resolution reads
    assert heard == [1]

    managebac.transition(at=clocks.wall)
    clocks.advance(60)
    await groups.refresh()

    assert heard == [1, 2]


async def test_a_second_active_cohort_of_a_grade_is_a_problem_named_for_the_grade() -> None:
    managebac, clocks = school(), Clocks()
    managebac.add_cohort(2099, "secondary;8", at=T0)
    groups = directory(managebac, clocks)

    resolution = await groups.refresh()

    assert dict(resolution.ids) == {7: 2007}
    assert list(resolution.described_problems()) == ["secondary;8"]
    assert "(ids 2008, 2099)" in resolution.described_problems()["secondary;8"]
