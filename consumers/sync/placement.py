"""Put every synced student in the cohort their iSAMS year resolves to now.

docs/design.md §3: when the cohorts move grade (the academic-year transition), every
synced student whose cohort no longer has the grade their iSAMS year maps to is moved.
The run is state-based: it reads the school's current pupils from iSAMS (paged, their
`yearGroup`), the ledger's rows (the `year_group_id` pushed to each), and the directory's
resolution, and re-plans each pupil whose pushed cohort is not the one their year resolves
to (`placement_due`). Each re-plan is the student pipeline on the pupil's record as just
read, so a move is one PATCH of what differs, recorded in the ledger like any change, and
a pupil changed in iSAMS meanwhile is not set back (an older record is stale). A run cut
short (a restart, ManageBac+ down) leaves the ledger saying who is still in the old cohort,
so the next run finds exactly the rest.

Moves go at the school's ManageBac+ budget behind live changes: `lane` is entered around
each one (the consume process passes the budget's bulk lane), and only `concurrency` run
at once. A failure that may pass (ManageBac+ down, the school's token refused) ends the run
there: the moves not begun would fail alike, and the next run finds them.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from consumers.domain.isams import IsamsStudent
from consumers.domain.students import parse_student
from consumers.domain.year_groups import Resolution, placement_due
from consumers.events import QueuedChange
from consumers.outcomes import Outcome, PermanentFailureError
from consumers.ports import Record
from consumers.sync.context import SyncContext
from consumers.sync.students import place_student

log = logging.getLogger(__name__)

Lane = Callable[[], AbstractContextManager[None]]
CONCURRENCY = 8
_WROTE = (Outcome.UPDATED, Outcome.CREATED, Outcome.ADOPTED, Outcome.UNARCHIVED)


@dataclass(frozen=True)
class PlacementRun:
    """What one run found and did: pupils checked, re-planned, and their outcomes."""

    resolution: Resolution
    checked: int = 0
    due: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    left: int = 0
    """Due but not tried: the run ended at a failure that may pass."""
    retry: bool = False
    """Some re-plans failed for a reason that may pass (ManageBac+ or iSAMS down, the
    school's token refused): run again at the next read."""

    @property
    def moved(self) -> int:
        """Pupils written to ManageBac+ (moved, or created once their grade resolved)."""
        return sum(self.outcomes[outcome.value] for outcome in _WROTE)


async def place_students(
    context: SyncContext, *, lane: Lane = nullcontext, concurrency: int = CONCURRENCY
) -> PlacementRun:
    """Re-plan every pupil not in the cohort their iSAMS year resolves to now."""
    directory = context.year_groups
    assert directory is not None, "placement needs the school's year-group directory"
    resolution = directory.resolution
    rows = {row.isams_id: row for row in await context.ledger.records(context.school, "student")}
    due: list[Record] = []
    checked = 0
    async for raw in context.ports.isams.all_students():
        record = parse_student(raw)
        if not isinstance(record, IsamsStudent) or not record.is_current:
            continue
        checked += 1
        if placement_due(rows.get(record.school_id), record.year_group, resolution) is not None:
            due.append(raw)
    run_id = f"year-groups-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    outcomes: Counter[str] = Counter()
    failures: list[BaseException] = []
    slots = asyncio.Semaphore(concurrency)

    async def move(raw: Record) -> None:
        async with slots:
            if any(not isinstance(exc, PermanentFailureError) for exc in failures):
                return  # the run ends: left for the next one
            change = _change(context.school, raw, run_id)
            try:
                with lane():
                    result = await place_student(change, context)
            except Exception as exc:  # one pupil's failure never stops the others' moves
                failures.append(exc)
                if isinstance(exc, PermanentFailureError):
                    await _say_why_not_moved(context, change.event.record_id, exc)
                log.warning(
                    "pupil not moved to their year group",
                    extra={
                        "school": context.school,
                        "isams_id": change.event.record_id,
                        "error": type(exc).__name__,
                    },
                )
                return
            outcomes[result.outcome.value] += 1

    await asyncio.gather(*(move(raw) for raw in due))
    run = PlacementRun(
        resolution=resolution,
        checked=checked,
        due=len(due),
        outcomes=outcomes,
        failed=len(failures),
        left=len(due) - sum(outcomes.values()) - len(failures),
        # ManageBac+ refusing a pupil's data stays refused; anything else may pass.
        retry=any(not isinstance(exc, PermanentFailureError) for exc in failures),
    )
    log.info(
        "pupils placed in their year groups",
        extra={
            "school": context.school,
            "run": run_id,
            "checked": run.checked,
            "due": run.due,
            "moved": run.moved,
            "failed": run.failed,
            "left": run.left,
        },
    )
    return run


async def _say_why_not_moved(
    context: SyncContext, isams_id: str, error: PermanentFailureError
) -> None:
    """Put ManageBac+'s refusal on the pupil's ledger row, for `explain` (their next change
    meets it too, and goes to the DLQ with it)."""
    row = await context.ledger.get(context.school, "student", isams_id)
    if row is not None:
        why = f"not moved to the year group of their grade: {error.error_class}: {error.detail}"
        await context.ledger.put(replace(row, reason=why[:1000]))


def _change(school: str, raw: Record, run_id: str) -> QueuedChange:
    """Return the pupil's record as a fat change, as a sender would queue it now."""
    now = datetime.now(UTC)
    data: dict[str, Any] = {"schoolId": str(raw.get("schoolId")), "record": raw}
    return QueuedChange.model_validate(
        {
            "type": "student.updated",
            "timestamp": now,
            "data": data,
            "school": school,
            "webhook_id": run_id,
            "received_at": now,
        }
    )
