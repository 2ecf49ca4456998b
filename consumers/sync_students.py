"""Students: fetch (or take from a fat event) → plan (pure) → write to ManageBac+ → ledger;
then the student's contacts, whose parents' links depend on the student."""

from __future__ import annotations

from datetime import UTC, datetime

from app.events import QueuedChange
from consumers.adapters.managebac import RemoteUser
from consumers.apply import (
    STALE,
    applied,
    applied_version,
    apply_writes,
    failures_translated,
    is_stale_change,
    pushed_state,
    skipped,
)
from consumers.context import SyncContext
from consumers.domain.plan import Create, Skip
from consumers.domain.records import Status, SyncRecord
from consumers.domain.students import StudentRules, parse_student, plan_student
from consumers.outcomes import Outcome, Result
from consumers.sync_parents import sync_contacts_of_student

KIND = "student"
# Outcomes that change whether the student counts as an active child of their parents.
_MOVES = frozenset({Outcome.CREATED, Outcome.ADOPTED, Outcome.ARCHIVED, Outcome.UNARCHIVED})


def rules_for(context: SyncContext) -> StudentRules:
    """Build the pure core's rules from the school's settings."""
    school = context.ports.settings
    return StudentRules(
        year_groups=dict(school.mappings.year_groups),
        placeholder_email_domain=school.placeholder_email_domain,
    )


async def sync_student(change: QueuedChange, context: SyncContext) -> Result:
    """Bring one student's ManageBac+ record in line with iSAMS, then their contacts."""
    async with failures_translated():
        result = await _sync_student(change, context)
        if result.outcome is not Outcome.STALE:
            await sync_contacts_of_student(
                context,
                change.event.record_id,
                change.received_at,
                student_moved=result.outcome in _MOVES,
            )
        return result


async def _sync_student(change: QueuedChange, context: SyncContext) -> Result:
    ledger = context.ledger
    isams_id = change.event.record_id
    previous = await ledger.get(context.school, KIND, isams_id)
    base = previous or SyncRecord(
        school=context.school, kind=KIND, isams_id=isams_id, status=Status.SKIPPED
    )
    raw = change.data.record
    if raw is None and change.event.action != "deleted":
        raw = await context.ports.isams.student(isams_id)
    record = parse_student(raw) if raw is not None else None
    if isinstance(record, Skip):
        await ledger.put(skipped(base, record.reason, (), change.received_at))
        return Result(Outcome.SKIPPED, reason=record.reason)
    version = record.last_updated if record is not None else None
    if record is not None and is_stale_change(change, version, previous):
        return STALE

    plan = plan_student(
        record,
        rules_for(context),
        pushed_state(previous),
        event_deleted=change.event.action == "deleted",
        today=datetime.now(UTC).date(),
    )
    if plan.skip is not None:
        await ledger.put(
            skipped(
                base,
                plan.skip.reason,
                plan.warnings,
                change.received_at,
                # A skip is applied too: an older version parked for a retry must not undo it.
                source_updated_at=applied_version(version, base),
            )
        )
        return Result(Outcome.SKIPPED, reason=plan.skip.reason)

    async def same_student_id(write: Create) -> RemoteUser | None:
        student_id = str(write.payload.get("student_id", ""))
        return await context.ports.managebac.find_student(student_id) if student_id else None

    managebac_id, outcome = await apply_writes(
        plan,
        "students",
        base.managebac_id,
        context.ports.managebac,
        same_student_id,
        match_first=False,
    )
    await ledger.put(
        applied(
            base,
            plan,
            managebac_id,
            outcome,
            change.received_at,
            archive_reason=_archive_reason(change),
            source_updated_at=applied_version(version, base),
        )
    )
    return Result(outcome, wrote=outcome is not Outcome.UNCHANGED)


def _archive_reason(change: QueuedChange) -> str:
    if change.event.action == "deleted":
        return "archived: deleted in iSAMS"
    return "archived: not current in iSAMS"
