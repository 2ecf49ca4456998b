"""Students through the pipeline, then the student's contacts (their parents' links depend
on the student being in ManageBac+)."""

from __future__ import annotations

from datetime import UTC, datetime

from consumers.domain.isams import IsamsStudent
from consumers.domain.plan import Create, Plan
from consumers.domain.students import StudentRules, parse_student, plan_student
from consumers.events import QueuedChange
from consumers.outcomes import Outcome, Result
from consumers.ports import ManagebacPort, Record, RemoteUser
from consumers.sync.context import SchoolPorts, SyncContext
from consumers.sync.parents import sync_contacts_of_student
from consumers.sync.pipeline import KindSteps, Planning, sync_record
from consumers.sync.writes import failures_translated

# Outcomes that change whether the student counts as an active child of their parents.
_MOVES = frozenset({Outcome.CREATED, Outcome.ADOPTED, Outcome.ARCHIVED, Outcome.UNARCHIVED})


def rules_for(context: SyncContext) -> StudentRules:
    """Build the pure core's rules from the school's settings."""
    school = context.ports.settings
    return StudentRules(
        year_groups=dict(school.mappings.year_groups),
        placeholder_email_domain=school.placeholder_email_domain,
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
        result = await sync_record(STUDENT_STEPS, change, context)
        if result.outcome is not Outcome.STALE:
            await sync_contacts_of_student(
                context,
                change.event.record_id,
                change.received_at,
                student_moved=result.outcome in _MOVES,
            )
        return result
