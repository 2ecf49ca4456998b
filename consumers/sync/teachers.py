"""Teachers through the pipeline: iSAMS staff with ManageBac+ access, matched by e-mail.

Access is a setting of the iSAMS user, not of the employee record: it arrives as
`managebacAccess` on staff events, and the last value seen is remembered in the ledger for
the events that do not carry it.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from consumers.domain.isams import IsamsEmployee
from consumers.domain.plan import Plan
from consumers.domain.records import SourceState
from consumers.domain.teachers import TeacherRules, access_for, parse_employee, plan_teacher
from consumers.events import QueuedChange
from consumers.outcomes import Result
from consumers.ports import Record
from consumers.sync.context import SchoolPorts, SyncContext
from consumers.sync.pipeline import KindSteps, Planning, by_email, sync_record
from consumers.sync.writes import failures_translated


def rules_for(context: SyncContext) -> TeacherRules:
    """Build the pure core's rules from the school's settings."""
    staff = context.ports.settings.staff
    return TeacherRules(
        enabled=staff.enabled,
        on_access_revoked=staff.on_access_revoked,
        access_from=staff.access_from,
    )


async def _fetch(ports: SchoolPorts, isams_id: str) -> Record | None:
    return await ports.isams.employee(isams_id)


def _remember_access(change: QueuedChange, source: SourceState) -> SourceState:
    """Keep the event's `managebacAccess`, else the last one known."""
    access = change.data.managebacAccess
    if access is None:
        return source
    return replace(source, access=access)


def _plan(planning: Planning[IsamsEmployee]) -> Plan:
    rules = rules_for(planning.context)
    return plan_teacher(
        planning.record,
        access_for(rules, planning.record, planning.source.access),
        rules,
        planning.previous,
        event_deleted=planning.change.event.action == "deleted",
    )


def _archive_reason(change: QueuedChange, employee: IsamsEmployee | None) -> str:
    if change.event.action == "deleted" or employee is None:
        return "archived: deleted in iSAMS"
    if not employee.is_current:
        return "archived: left the school (not current in iSAMS)"
    return "archived: ManageBac+ access revoked in iSAMS"


TEACHER_STEPS: KindSteps[IsamsEmployee] = KindSteps(
    kind="staff",
    resource="teachers",
    fetch=_fetch,
    parse=parse_employee,
    plan=_plan,
    find_existing=partial(by_email, "teachers"),
    archive_reason=_archive_reason,
    remember=_remember_access,
)


async def sync_staff(change: QueuedChange, context: SyncContext) -> Result:
    """Bring one member of staff's ManageBac+ teacher in line with iSAMS."""
    async with failures_translated():
        return await sync_record(TEACHER_STEPS, change, context)
