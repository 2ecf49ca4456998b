"""One user's drift repaired: students and teachers here, parents (consumers/capture/
drift_parents.py) through the same step.

A user this service manages (its ledger row has a ManageBac+ id) is planned by the mapping
core against what ManageBac+ holds now, so the plan's writes are the drift. A user it does
not manage yet is planned as the change path would plan it (a creation), and a creation
that matches a ManageBac+ user (same student_id, or same e-mail) becomes its adoption, as
the change path's "already taken" does, without the failed request first. A managed user
ManageBac+ no longer has is created again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import TypeVar

from consumers.capture.holdings import Held
from consumers.capture.plan_report import Act, PlanItem, item_of
from consumers.capture.run_state import End, RunState, refusal, row_changed
from consumers.domain.drift import adoption_plan, trimmed
from consumers.domain.isams import IsamsEmployee, IsamsStudent
from consumers.domain.plan import Archive, Create, Plan, PushedState, Skip, Unarchive
from consumers.domain.students import parse_student, plan_student
from consumers.domain.teachers import access_for, parse_employee, plan_teacher
from consumers.ports import ManagebacRejectedError, Record, Resource
from consumers.sync import students as student_sync
from consumers.sync import teachers as teacher_sync
from consumers.sync.writes import FindExisting, applied, applied_version

log = logging.getLogger(__name__)
M = TypeVar("M")

GONE = "no longer in iSAMS (neither on roll nor a leaver)"
HELD = "held by the removals guard; run again with --force if iSAMS really lost them"
UNARCHIVED = "archived in ManageBac+ but current in iSAMS"


@dataclass(frozen=True)
class Subject:
    """One user to reconcile: who it is, how the core plans it, and what its archive means.

    `plan` is the core's plan given a previous state (None: as for a creation). `in_scope`:
    a skip is worth listing even when ManageBac+ has nothing (a pupil on roll, an employee
    at the school, a person with a contact of a mapped type); a leaver never synced is not.
    `gone` says why an archive happens (the removals guard knows which are unexplained).
    """

    kind: str
    shown: str
    resource: Resource
    isams_id: str
    plan: Callable[[PushedState | None], Plan]
    match_key: str
    in_scope: bool
    gone: str
    find_existing: FindExisting
    version: datetime | None = None
    unarchived: str = UNARCHIVED
    archive_reason: str | None = None


async def reconcile_user(run: RunState, subject: Subject) -> End:
    """Plan one user against ManageBac+, make the writes (unless a dry run), record the row."""
    row = run.row(subject.kind, subject.isams_id)
    managed_id = row.managebac_id if row is not None else None
    held = run.holdings.user(subject.resource, managed_id)
    note: str | None = None
    adopted = False
    if held is not None:
        previous = PushedState(held.fields, held.archived, held.id)
        owned = row.pushed if row is not None else {}
        plan = trimmed(subject.plan(previous), held.fields, owned)
    else:
        if managed_id is not None:
            note = f"ManageBac+ has no {subject.shown} {managed_id} any more: created again"
        plan = subject.plan(None)
        held, plan = _adopted(run, subject, plan)
        adopted = held is not None
        note = f"already in ManageBac+ (same {subject.match_key})" if adopted else note
    if plan.skip is not None and held is None and not subject.in_scope:
        return End(None, False)  # never in ManageBac+ and not meant to be: not part of the plan
    if plan.skip is not None and held is not None and held.archived:
        # Archived in ManageBac+: right when the core would archive the user were it active
        # (a leaver, a parent with no active child), so nothing to list, run after run.
        as_active = subject.plan(PushedState(held.fields, False, held.id))
        if any(isinstance(write, Archive) for write in as_active.writes):
            run.plan.add(None, subject.shown)
            return _ended(run, subject, held, None)

    archives = any(isinstance(write, Archive) for write in plan.writes)
    key = (subject.kind, subject.isams_id)
    if archives and held is not None and key in run.unexplained and not run.decision.allowed:
        why = f"{subject.gone}; {HELD}"
        run.plan.add(
            PlanItem(subject.shown, subject.isams_id, Act.HELD, held.id, reason=why), subject.shown
        )
        return _ended(run, subject, held, None)

    reason = note or (subject.gone if archives else None)
    if reason is None and plan.writes and isinstance(plan.writes[0], Unarchive):
        reason = subject.unarchived
    observed = held.fields if held is not None else {}
    item = item_of(
        subject.shown,
        subject.isams_id,
        plan,
        observed,
        held.id if held is not None else None,
        adopted=adopted,
        reason=reason,
    )
    if plan.skip is not None:
        run.plan.add(item, subject.shown)
        return _ended(run, subject, held, None)
    try:
        managebac_id, outcome = await run.applier.write(
            subject.resource, plan, held.id if held is not None else None, subject.find_existing
        )
    except ManagebacRejectedError as exc:
        log.warning(
            "reconcile write refused",
            extra={"school": run.school, "kind": subject.kind, "isams_id": subject.isams_id},
        )
        run.plan.add(replace(item, error=refusal(exc)) if item else None, subject.shown)
        return _ended(run, subject, held, None)
    if item is not None and managebac_id is not None:
        item = replace(item, managebac_id=managebac_id)
    run.plan.add(item, subject.shown)
    if managebac_id is not None and not run.applier.dry_run:
        base = await run.base_row(subject.kind, subject.isams_id)
        after = applied(
            base,
            plan,
            managebac_id,
            outcome,
            run.now,
            archive_reason=subject.archive_reason or f"archived: {subject.gone}",
            source_updated_at=applied_version(subject.version, base),
        )
        if row_changed(base, after):
            await run.applier.record(after)
    created = bool(plan.writes) and isinstance(plan.writes[0], Create)
    return _ended(run, subject, held, plan, managebac_id, created)


def _adopted(run: RunState, subject: Subject, plan: Plan) -> tuple[Held | None, Plan]:
    """Turn a creation into the adoption of the ManageBac+ user it matches, if there is one."""
    create = plan.writes[0] if plan.writes else None
    if not isinstance(create, Create):
        return None, plan
    key = create.payload.get(subject.match_key)
    match = run.holdings.match(
        subject.resource, key if isinstance(key, str) else None, run.taken(subject.resource)
    )
    if match is None:
        return None, plan
    return match, adoption_plan(create, match.fields, match.archived, match.id, plan.warnings)


def _ended(
    run: RunState,
    subject: Subject,
    held: Held | None,
    plan: Plan | None,
    managebac_id: int | None = None,
    created: bool = False,
) -> End:
    """Note where the user stands now and that this service manages it."""
    if plan is None or plan.state is None or managebac_id is None:
        if held is None:
            return End(None, False)
        run.manage(subject.resource, held.id, subject.shown, subject.isams_id, held.fields)
        return End(held.id, not held.archived)
    run.manage(subject.resource, managebac_id, subject.shown, subject.isams_id, plan.state.fields)
    return End(managebac_id, not plan.state.archived, created)


# --- students and teachers --------------------------------------------------------------------


async def reconcile_students(run: RunState) -> None:
    """Reconcile every pupil iSAMS lists, then the managed ones it no longer has."""
    if run.context.year_groups is not None:  # `mappings.grades`: the cohorts of each grade now
        await run.context.year_groups.fresh()
    rules = student_sync.rules_for(run.context)
    today = run.now.date()
    find = partial(student_sync.STUDENT_STEPS.find_existing, run.ports.managebac)
    pupils = run.isams.pupils
    gone = run.gone("student", pupils)
    for school_id, raw in [*pupils.items(), *((school_id, None) for school_id in gone)]:
        record = _parsed(run, "student", school_id, parse_student, raw)
        if isinstance(record, Skip):
            continue
        leaver = record is not None and not record.is_current

        def plan(previous: PushedState | None, record: IsamsStudent | None = record) -> Plan:
            return plan_student(record, rules, previous, event_deleted=False, today=today)

        run.students[school_id] = await reconcile_user(
            run,
            Subject(
                kind="student",
                shown="student",
                resource="students",
                isams_id=school_id,
                plan=plan,
                match_key="student_id",
                in_scope=record is not None and record.is_current,
                gone="not current in iSAMS (a leaver)" if leaver else GONE,
                find_existing=find,
                version=record.last_updated if record is not None else None,
            ),
        )


async def reconcile_teachers(run: RunState) -> None:
    """Reconcile every employee iSAMS lists, then the managed ones it no longer has.

    Access to ManageBac+ is decided as the live path decides it (`access_for`: the school's
    `staff.access_from`, else what the ledger last heard from a staff event).
    """
    rules = teacher_sync.rules_for(run.context)
    employees = run.isams.employees
    gone = run.gone("staff", employees)
    for employee_id, raw in [*employees.items(), *((employee_id, None) for employee_id in gone)]:
        record = _parsed(run, "staff", employee_id, parse_employee, raw)
        if isinstance(record, Skip):
            continue
        row = run.row("staff", employee_id)
        access = access_for(rules, record, row.source.access if row is not None else None)

        def plan(
            previous: PushedState | None,
            record: IsamsEmployee | None = record,
            access: bool | None = access,
        ) -> Plan:
            return plan_teacher(record, access, rules, previous, event_deleted=False)

        await reconcile_user(
            run,
            Subject(
                kind="staff",
                shown="teacher",
                resource="teachers",
                isams_id=employee_id,
                plan=plan,
                match_key="email",
                in_scope=record is not None and record.is_current,
                gone=_why_teacher_goes(record, access),
                find_existing=partial(
                    teacher_sync.TEACHER_STEPS.find_existing, run.ports.managebac
                ),
                unarchived="archived in ManageBac+ but current, with ManageBac+ access, in iSAMS",
            ),
        )


def _why_teacher_goes(employee: IsamsEmployee | None, access: bool | None) -> str:
    if employee is None:
        return GONE
    if not employee.is_current:
        return "left the school (not current in iSAMS)"
    return "ManageBac+ access revoked in iSAMS" if access is False else "not synced any more"


def _parsed(
    run: RunState,
    kind: str,
    isams_id: str,
    parse: Callable[[object], M | Skip],
    raw: Record | None,
) -> M | Skip | None:
    """Parse a record; an unreadable one is listed as a skip with the reason, and a user
    this service manages stays as ManageBac+ has it."""
    if raw is None:
        return None
    parsed = parse(raw)
    if isinstance(parsed, Skip):
        shown = "teacher" if kind == "staff" else kind
        resource: Resource = "teachers" if kind == "staff" else "students"
        row = run.row(kind, isams_id)
        held = run.holdings.user(resource, row.managebac_id if row is not None else None)
        run.plan.add(
            PlanItem(shown, isams_id, Act.SKIP, held.id if held else None, reason=parsed.reason),
            shown,
        )
        if held is not None:
            run.manage(resource, held.id, shown, isams_id, held.fields)
            if kind == "student":
                run.students[isams_id] = End(held.id, not held.archived)
    return parsed
