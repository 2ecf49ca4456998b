"""Students through the pipeline, then the student's contacts (their parents' links depend
on the student being in ManageBac+)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from consumers.domain.isams import IsamsStudent
from consumers.domain.plan import Create, Plan
from consumers.domain.students import StudentRules, parse_student, plan_student
from consumers.events import QueuedChange
from consumers.outcomes import Outcome, Result, TransientFailureError
from consumers.ports import ManagebacPort, ManagebacRejectedError, Record, RemoteUser
from consumers.sync.context import SchoolPorts, SyncContext
from consumers.sync.parents import sync_contacts_of_student
from consumers.sync.pipeline import KindSteps, Planning, sync_record
from consumers.sync.writes import failures_translated

log = logging.getLogger(__name__)

# Outcomes that change whether the student counts as an active child of their parents.
_MOVES = frozenset({Outcome.CREATED, Outcome.ADOPTED, Outcome.ARCHIVED, Outcome.UNARCHIVED})


def rules_for(context: SyncContext) -> StudentRules:
    """Build the pure core's rules from the school's settings (and, with `mappings.grades`,
    from the cohorts its year-group directory read last)."""
    school = context.ports.settings
    directory = context.year_groups
    if directory is None:
        return StudentRules(
            year_groups=dict(school.mappings.year_groups),
            placeholder_email_domain=school.placeholder_email_domain,
        )
    resolution = directory.resolution
    return StudentRules(
        year_groups=dict(resolution.ids),
        placeholder_email_domain=school.placeholder_email_domain,
        unresolved=resolution.reasons(),
        year_group_setting="mappings.grades",
    )


async def _fetch(ports: SchoolPorts, isams_id: str) -> Record | None:
    return await ports.isams.student(isams_id)


def _plan(planning: Planning[IsamsStudent]) -> Plan:
    return plan_student(
        planning.record,
        rules_for(planning.context),
        planning.previous,
        event_deleted=planning.change.event.action == "deleted",
        today=datetime.now(UTC).date(),
    )


async def _same_student_id(client: ManagebacPort, write: Create) -> RemoteUser | None:
    student_id = str(write.payload.get("student_id", ""))
    return await client.find_student(student_id) if student_id else None


def _archive_reason(change: QueuedChange, _record: IsamsStudent | None) -> str:
    if change.event.action == "deleted":
        return "archived: deleted in iSAMS"
    return "archived: not current in iSAMS"


STUDENT_STEPS: KindSteps[IsamsStudent] = KindSteps(
    kind="student",
    resource="students",
    fetch=_fetch,
    parse=parse_student,
    plan=_plan,
    find_existing=_same_student_id,
    archive_reason=_archive_reason,
)


async def sync_student(change: QueuedChange, context: SyncContext) -> Result:
    """Bring one student's ManageBac+ record in line with iSAMS, then their contacts."""
    async with failures_translated():
        result = await _sync_student_record(change, context)
        if result.outcome is not Outcome.STALE:
            await sync_contacts_of_student(
                context,
                change.event.record_id,
                change.received_at,
                student_moved=result.outcome in _MOVES,
            )
        return result


async def place_student(change: QueuedChange, context: SyncContext) -> Result:
    """Plan one student again, without their contacts: how a pupil moves to the cohort of
    their grade after the cohorts moved (consumers/sync/placement.py)."""
    async with failures_translated():
        return await _sync_student_record(change, context)


def refuses_year_group(error: ManagebacRejectedError) -> bool:
    """Tell whether ManageBac+ refused the year_group_id sent (unknown, or archived)."""
    return error.status == 422 and "year_group_id" in error.body


async def _sync_student_record(change: QueuedChange, context: SyncContext) -> Result:
    """Run the student through the pipeline, one change of a student at a time in this
    process (the placement moves students outside the consume loop's order per key).

    With `mappings.grades`, the year groups are read first if the last read is over a
    minute old, and a refused year_group_id (a cohort archived or gone since that read)
    leads to a read at once, a new plan and one more try; refused again, the change waits
    on the retry topic rather than the DLQ (the read and ManageBac+ disagree for now).
    """
    directory = context.year_groups
    async with context.locks.hold(f"{context.school}:student:{change.event.record_id}"):
        if directory is None:
            return await sync_record(STUDENT_STEPS, change, context)
        await directory.fresh()
        planned_at = directory.now()
        try:
            return await sync_record(STUDENT_STEPS, change, context)
        except ManagebacRejectedError as exc:
            if not refuses_year_group(exc):
                raise
            log.warning(
                "ManageBac+ refused a year group; reading the year groups again",
                extra={"school": context.school, "isams_id": change.event.record_id},
            )
        await directory.refresh(after=planned_at)
        try:
            return await sync_record(STUDENT_STEPS, change, context)
        except ManagebacRejectedError as exc:
            if not refuses_year_group(exc):
                raise
            raise TransientFailureError(
                "ManageBac+ refused the year_group_id again after the year groups were read "
                f"again: {exc.body[:300]}"
            ) from exc
