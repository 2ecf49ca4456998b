"""One school's year-group directory: ManageBac+'s cohorts, kept fresh, and the year group
each mapped NC year has now (docs/design.md §3, `mappings.grades`).

It uses only the ManageBac+ port. The first read takes every cohort; later ones ask for
those changed since the last read (`modified_since`, a little earlier than that read began,
against clock skew) and merge them in; every `full_every` seconds a whole read again drops
a cohort deleted in ManageBac+, which a `modified_since` read never shows. A view older than
`max_age` is read again before it is used, so any process that plans students uses one at
most a minute old; the consume process also re-reads on a timer (consumers/year_groups.py),
so the transition is seen even while no change comes. When ManageBac+ refuses a
year_group_id the sync asks for a read at once (`refresh(after=...)`), and changes refused
together share that one read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from consumers.domain.year_groups import (
    Cohort,
    GradeCode,
    Resolution,
    merge,
    read_cohort,
    resolve,
    unread,
)
from consumers.ports import ManagebacError, ManagebacPort
from consumers.settings import School

log = logging.getLogger(__name__)

MAX_AGE = 60.0  # docs/design.md §3: re-read at least every minute
FULL_EVERY = 3600.0
OVERLAP = timedelta(minutes=2)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class YearGroupDirectory:
    """The cohorts of one school's ManageBac+ and the resolution of its `mappings.grades`."""

    def __init__(
        self,
        school: str,
        grades: Mapping[int, GradeCode],
        managebac: ManagebacPort,
        *,
        max_age: float = MAX_AGE,
        full_every: float = FULL_EVERY,
        overlap: timedelta = OVERLAP,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.school = school
        self.grades: Mapping[int, GradeCode] = dict(grades)
        self._managebac = managebac
        self._max_age = max_age
        self._full_every = full_every
        self._overlap = overlap
        self._clock = clock
        self._wall = wall
        self._view: dict[int, Cohort] = {}
        self._resolution = unread(self.grades)
        self._read_at: float | None = None  # clock() when the last good read began
        self._full_at: float | None = None
        self._since: datetime | None = None
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[], None]] = []
        self.generation = 0
        """Counts the changes of the resolution (a listener compares it with its own)."""

    @property
    def resolution(self) -> Resolution:
        """Each mapped year's year group as of the last read (none before the first)."""
        return self._resolution

    @property
    def cohorts(self) -> Mapping[int, Cohort]:
        """The cohorts as of the last read, by id (archived ones too)."""
        return dict(self._view)

    def now(self) -> float:
        """Return the directory's clock, to pass back to `refresh(after=...)`."""
        return self._clock()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` (no arguments, not awaited) each time the resolution changes."""
        self._listeners.append(listener)

    async def fresh(self) -> Resolution:
        """Return the resolution, read again first when the last read is over `max_age` old.

        A failed read keeps the view held, when there is one (ManageBac+'s writes then say
        whether an id is still good); with none yet, the failure is the caller's.
        """
        now = self._clock()
        if self._read_at is not None and now - self._read_at < self._max_age:
            return self._resolution
        try:
            return await self.refresh(after=now - self._max_age)
        except ManagebacError as exc:
            if self._read_at is None:
                raise
            log.warning(
                "year groups not read again; using the last read",
                extra={"school": self.school, "error": type(exc).__name__},
            )
            return self._resolution

    async def refresh(self, *, after: float | None = None) -> Resolution:
        """Read ManageBac+'s cohorts again (those changed since the last read, or all when a
        whole read is due) and resolve; when a read that began after `after` has finished
        meanwhile, that one is used instead."""
        async with self._lock:
            if after is not None and self._read_at is not None and self._read_at > after:
                return self._resolution
            started, wall = self._clock(), self._wall()
            whole = (
                self._since is None
                or self._full_at is None
                or started - self._full_at >= self._full_every
            )
            raw = await self._managebac.year_groups(None if whole else self._since)
            cohorts = [cohort for cohort in map(read_cohort, raw) if cohort is not None]
            self._view = {c.id: c for c in cohorts} if whole else merge(self._view, cohorts)
            self._read_at, self._since = started, wall - self._overlap
            if whole:
                self._full_at = started
            resolution = resolve(self.grades, self._view.values())
            changed = resolution != self._resolution
            self._resolution = resolution
        if changed:
            self.generation += 1
            log.info(
                "year groups resolved anew",
                extra={
                    "school": self.school,
                    "generation": self.generation,
                    "unresolved": sorted(resolution.described_problems()),
                },
            )
            for listener in list(self._listeners):
                listener()
        return resolution


def directory_for(school: School, managebac: ManagebacPort) -> YearGroupDirectory | None:
    """Return a directory of the school's year groups when it maps grades, else None."""
    grades = school.mappings.grade_codes()
    return YearGroupDirectory(school.id, grades, managebac) if grades else None
