"""Teachers: iSAMS staff with ManageBac+ access become ManageBac+ teachers, matched by e-mail.

Access is a setting of the iSAMS user, not of the employee record: it arrives as
`managebacAccess` on staff events, and the last value seen is kept in the ledger for the
events that do not carry it.
"""

from __future__ import annotations

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
from consumers.domain.isams import IsamsEmployee
from consumers.domain.plan import Create, Skip
from consumers.domain.records import Status, SyncRecord
from consumers.domain.teachers import TeacherRules, parse_employee, plan_teacher
from consumers.outcomes import Outcome, Result

KIND = "staff"


def rules_for(context: SyncContext) -> TeacherRules:
    """Build the pure core's rules from the school's settings."""
    staff = context.ports.settings.staff
    return TeacherRules(enabled=staff.enabled, on_access_revoked=staff.on_access_revoked)


async def sync_staff(change: QueuedChange, context: SyncContext) -> Result:
    """Bring one member of staff's ManageBac+ teacher in line with iSAMS."""
    async with failures_translated():
        return await _sync_staff(change, context)


async def _sync_staff(change: QueuedChange, context: SyncContext) -> Result:
    ledger = context.ledger
    isams_id = change.event.record_id
    previous = await ledger.get(context.school, KIND, isams_id)
    base = previous or SyncRecord(
        school=context.school, kind=KIND, isams_id=isams_id, status=Status.SKIPPED
    )
    access = change.data.managebacAccess
    if access is None:
        known = base.source.get("access")
        access = known if isinstance(known, bool) else None
    source = {**base.source, "access": access}
    raw = change.data.record
    if raw is None and change.event.action != "deleted":
        raw = await context.ports.isams.employee(isams_id)
    employee = parse_employee(raw) if raw is not None else None
    if isinstance(employee, Skip):
        await ledger.put(skipped(base, employee.reason, (), change.received_at, source=source))
        return Result(Outcome.SKIPPED, reason=employee.reason)
    version = employee.last_updated if employee is not None else None
    if employee is not None and is_stale_change(change, version, previous):
        return STALE

    plan = plan_teacher(
        employee,
        access,
        rules_for(context),
        pushed_state(previous),
        event_deleted=change.event.action == "deleted",
    )
    if plan.skip is not None:
        await ledger.put(
            skipped(
                base,
                plan.skip.reason,
                plan.warnings,
                change.received_at,
                source=source,
                # A skip is applied too: an older version parked for a retry must not undo it.
                source_updated_at=applied_version(version, base),
            )
        )
        return Result(Outcome.SKIPPED, reason=plan.skip.reason)

    client = context.ports.managebac

    async def same_email(write: Create) -> RemoteUser | None:
        email = write.payload.get("email")
        return await client.find_by_email("teachers", email) if isinstance(email, str) else None

    managebac_id, outcome = await apply_writes(
        plan, "teachers", base.managebac_id, client, same_email, match_first=True
    )
    await ledger.put(
        applied(
            base,
            plan,
            managebac_id,
            outcome,
            change.received_at,
            archive_reason=_archive_reason(change, employee),
            source=source,
            source_updated_at=applied_version(version, base),
        )
    )
    return Result(outcome, wrote=outcome is not Outcome.UNCHANGED)


def _archive_reason(change: QueuedChange, employee: IsamsEmployee | None) -> str:
    if change.event.action == "deleted" or employee is None:
        return "archived: deleted in iSAMS"
    if not employee.is_current:
        return "archived: left the school (not current in iSAMS)"
    return "archived: ManageBac+ access revoked in iSAMS"
