"""A school that maps grades (`mappings.grades`), on the fakes: Secondary years 7 to 9, each
with its cohort in ManageBac+ (ids 2007 to 2009)."""

from __future__ import annotations

from consumers.sync.year_groups import YearGroupDirectory
from tests.fakes import FakeSync, school_settings

GRADES = {year: f"secondary;{year}" for year in (7, 8, 9)}
COHORTS = {year: 2000 + year for year in (7, 8, 9)}


def grades_sync(grades: dict[int, str] | None = None, *, cohorts: bool = True) -> FakeSync:
    """Return the sync over a school mapping `grades`, its cohorts added when asked."""
    sync = FakeSync(school_settings(mappings={"year_groups": {}, "grades": grades or GRADES}))
    if cohorts:
        for year, cohort_id in COHORTS.items():
            sync.managebac.add_cohort(cohort_id, f"secondary;{year}")
    return sync


def directory_of(sync: FakeSync) -> YearGroupDirectory:
    """Return the school's year-group directory (the school maps grades)."""
    found = sync.service.contexts[sync.school.id].year_groups
    assert found is not None
    return found
