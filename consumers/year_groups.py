"""Year groups in the consume process: each `mappings.grades` school's cohorts read again on a
timer, its students placed when what the grades resolve to changes, and what does not
resolve said (a metric, a ledger row for `explain`, the readiness detail).

docs/design.md §3: the year groups are read at least every minute, and when the cohorts
move grade every synced student whose cohort no longer has the grade of their iSAMS year
is moved (consumers/sync/placement.py), so the academic-year rollover, in either order of
the two systems, needs no ticket. Like consumers/blocks.py, the state is in memory for the
hot path, in `isams_sync_year_group_unresolved{school,grade}`, and in a ledger row of kind
`school` (`year-groups`), which `explain`, the admin API and the console of any process
read. That row also keeps the placement: the year group each NC year resolved to when the
school's students were last all placed. A process placing students finds them from state
(iSAMS, the ledger), so a run cut short by a restart is finished by the next process: it
places at start-up whenever the resolution differs from the stored placement.

Moves go through the school's ManageBac+ budget on its bulk lane (`bulk_work`): live
changes' requests are served first, and the moves never hold a consume slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from consumers.adapters.budget import bulk_lane
from consumers.domain.records import SCHOOL_KIND, Status, SyncRecord
from consumers.domain.year_groups import Resolution
from consumers.ports import LedgerPort
from consumers.sync.context import SyncContext
from consumers.sync.placement import Lane, PlacementRun, place_students
from consumers.sync.year_groups import YearGroupDirectory

log = logging.getLogger(__name__)

YEAR_GROUPS = "year-groups"
INTERVAL = 60.0  # docs/design.md §3: at least every minute


@contextlib.contextmanager
def bulk_work() -> Iterator[None]:
    """Make the ManageBac+ requests sent inside wait behind the school's live ones."""
    token = bulk_lane.set(True)
    try:
        yield
    finally:
        bulk_lane.reset(token)


class YearGroupWatch:
    """Every `mappings.grades` school's year groups, kept fresh, and its students placed."""

    def __init__(
        self,
        contexts: Mapping[str, SyncContext],
        ledger: LedgerPort,
        *,
        interval: float = INTERVAL,
        lane: Lane = bulk_work,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._contexts = {
            school: context
            for school, context in contexts.items()
            if context.year_groups is not None
        }
        self._ledger = ledger
        self._interval = interval
        self._lane = lane
        self._gauge, self._placed_total = _metrics(registry)
        self._wake = {school: asyncio.Event() for school in self._contexts}
        self._again: set[str] = set()  # a run had failures that may pass
        self._tasks: dict[str, asyncio.Task[None]] = {}
        for school in self._contexts:
            self._directory(school).on_change(self._wake[school].set)

    @property
    def schools(self) -> tuple[str, ...]:
        """The schools watched: those mapping `grades`."""
        return tuple(self._contexts)

    def problems(self) -> dict[str, dict[str, str]]:
        """Return, per school, each grade without a single active year group now, and why
        (the consume process's readiness detail; the other schools are not held by it)."""
        found = {
            school: self._directory(school).resolution.described_problems()
            for school in self._contexts
        }
        return {school: grades for school, grades in found.items() if grades}

    async def start(self) -> None:
        """Start watching each school (its first read and placement run at once)."""
        for school in self._contexts:
            if school not in self._tasks or self._tasks[school].done():
                self._tasks[school] = asyncio.create_task(
                    self._watch(school), name=f"year-groups-{school}"
                )

    async def stop(self) -> None:
        """Stop watching (the process is going); a placement cut short is finished later."""
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def cycle(self, school: str, *, read: bool = True) -> PlacementRun | None:
        """Read the school's year groups (`read`; not when a read just showed a change),
        say what does not resolve, and place its students when the resolution is not the
        one they were placed by."""
        directory = self._directory(school)
        if read or not directory.resolution.read:
            await directory.refresh()
        resolution = directory.resolution
        # The placement stored is read every cycle, not cached: another replica may have
        # placed the students since (its placement then stands, and nobody is moved twice).
        row = await self._ledger.get(school, SCHOOL_KIND, YEAR_GROUPS)
        placed = _placement_of(row)
        await self._report(school, resolution, placed, row)
        if placed == dict(resolution.ids) and school not in self._again:
            return None
        run = await place_students(self._contexts[school], lane=self._lane)
        for outcome, count in run.outcomes.items():
            self._placed_total.labels(school=school, outcome=outcome).inc(count)
        if run.failed:
            self._placed_total.labels(school=school, outcome="failed").inc(run.failed)
        if run.retry:
            self._again.add(school)
        else:
            self._again.discard(school)
            row = await self._ledger.get(school, SCHOOL_KIND, YEAR_GROUPS)
            await self._report(school, directory.resolution, dict(run.resolution.ids), row)
        return run

    async def _watch(self, school: str) -> None:
        wake = self._wake[school]
        woken = False  # by a read elsewhere (a refused id, a change's fresh read): no re-read
        while True:
            wake.clear()
            try:
                await self.cycle(school, read=not woken)
            except Exception as exc:  # ManageBac+ or iSAMS down, or a bug: try next time
                log.warning(
                    "year groups not read or students not placed; trying again",
                    extra={"school": school, "error": type(exc).__name__, "in_s": self._interval},
                )
            try:
                await asyncio.wait_for(wake.wait(), timeout=self._interval)
                woken = True
            except TimeoutError:
                woken = False

    def _directory(self, school: str) -> YearGroupDirectory:
        directory = self._contexts[school].year_groups
        assert directory is not None
        return directory

    async def _report(
        self,
        school: str,
        resolution: Resolution,
        placed: dict[int, int] | None,
        row: SyncRecord | None,
    ) -> None:
        """Set the gauge of each grade, and the ledger row (`row`, as just read) when what
        it says changed."""
        problems = resolution.described_problems()
        for grade in {str(code) for code in resolution.grades.values()}:
            self._gauge.labels(school=school, grade=grade).set(1 if grade in problems else 0)
        pushed = {"placed": {str(y): g for y, g in sorted(placed.items())}} if placed else {}
        status = Status.FAILED if problems else Status.SYNCED
        reason = "; ".join(problems.values()) or None
        if row is not None and (row.status, row.reason, row.pushed) == (status, reason, pushed):
            return
        if problems:
            log.warning(
                "year groups do not resolve", extra={"school": school, "grades": sorted(problems)}
            )
        base = row or SyncRecord(
            school=school, kind=SCHOOL_KIND, isams_id=YEAR_GROUPS, status=status
        )
        await self._ledger.put(
            replace(
                base,
                status=status,
                reason=reason,
                pushed=pushed,
                last_applied_at=datetime.now(UTC),
            )
        )


def _placement_of(row: SyncRecord | None) -> dict[int, int] | None:
    """Return the year groups the school's students were last placed by (None: never)."""
    if row is None or "placed" not in row.pushed:
        return None
    return {int(year): int(group) for year, group in row.pushed["placed"].items()}


_METRICS: dict[int, tuple[Gauge, Counter]] = {}


def _metrics(registry: CollectorRegistry) -> tuple[Gauge, Counter]:
    """One set per registry (a process builds one watch; tests build several)."""
    key = id(registry)
    if key not in _METRICS:
        _METRICS[key] = (
            Gauge(
                "isams_sync_year_group_unresolved",
                "1 while a mapped grade has no single active ManageBac+ year group (none, or"
                " two): its pupils are skipped.",
                ["school", "grade"],
                registry=registry,
            ),
            Counter(
                "isams_sync_year_group_placements",
                "Pupils re-planned into the year group of their grade after the cohorts moved,"
                " by outcome (updated = moved).",
                ["school", "outcome"],
                registry=registry,
            ),
        )
    return _METRICS[key]
