"""Students: fetch (or take from a fat event) → plan (pure) → write to ManageBac+ → ledger."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from app.events import QueuedChange
from consumers.adapters.isams import IsamsError
from consumers.adapters.ledger import Ledger
from consumers.adapters.managebac import (
    ManagebacRejectedError,
    ManagebacUnavailableError,
    RemoteUser,
)
from consumers.domain.isams import IsamsStudent
from consumers.domain.plan import (
    Archive,
    Create,
    Plan,
    PushedState,
    Skip,
    Unarchive,
    Update,
    content_hash,
    is_stale,
)
from consumers.domain.records import Status, SyncRecord
from consumers.domain.students import StudentRules, parse_student, plan_student
from consumers.outcomes import Outcome, PermanentFailureError, Result, TransientFailureError

if TYPE_CHECKING:
    from consumers.service import SchoolPorts

KIND = "student"


def rules_for(ports: SchoolPorts) -> StudentRules:
    """Build the pure core's rules from the school's settings."""
    school = ports.settings
    return StudentRules(
        year_groups=dict(school.mappings.year_groups),
        placeholder_email_domain=school.placeholder_email_domain,
    )


async def sync_student(change: QueuedChange, ports: SchoolPorts, ledger: Ledger) -> Result:
    """Bring one student's ManageBac+ record in line with iSAMS."""
    recorder = _Recorder(ledger, change)
    isams_id = change.event.record_id
    previous = await ledger.get(change.school, KIND, isams_id)
    raw = change.data.record
    if raw is None and change.event.action != "deleted":
        try:
            raw = await ports.isams.student(isams_id)
        except IsamsError as exc:
            raise TransientFailureError(str(exc)) from exc
    record = parse_student(raw) if raw is not None else None
    if isinstance(record, Skip):
        await recorder.skipped(previous, record.reason, ())
        return Result(Outcome.SKIPPED, reason=record.reason)
    if (
        change.data.record is not None
        and record is not None
        and previous is not None
        and is_stale(record.last_updated, previous.source_updated_at)
    ):
        return Result(Outcome.STALE, reason="an older version than the one already applied")

    plan = plan_student(
        record,
        rules_for(ports),
        _pushed(previous),
        event_deleted=change.event.action == "deleted",
        today=datetime.now(UTC).date(),
    )
    if plan.skip is not None:
        await recorder.skipped(previous, plan.skip.reason, plan.warnings)
        return Result(Outcome.SKIPPED, reason=plan.skip.reason)
    try:
        managebac_id, outcome = await _apply(plan, previous, ports)
    except ManagebacRejectedError as exc:
        raise PermanentFailureError("managebac-rejected", exc.body[:1000]) from exc
    except ManagebacUnavailableError as exc:
        raise TransientFailureError(str(exc)) from exc
    await recorder.applied(record, plan, managebac_id, outcome)
    return Result(outcome, wrote=outcome is not Outcome.UNCHANGED)


async def _apply(
    plan: Plan, previous: SyncRecord | None, ports: SchoolPorts
) -> tuple[int | None, Outcome]:
    """Make the plan's writes in order; return the ManageBac+ id and what happened."""
    client = ports.managebac
    managebac_id = previous.managebac_id if previous is not None else None
    outcome = Outcome.UNCHANGED
    for write in plan.writes:
        if isinstance(write, Create):
            user, adopted = await _create_or_adopt(write, ports)
            managebac_id = user.id
            outcome = Outcome.ADOPTED if adopted else Outcome.CREATED
            continue
        assert managebac_id is not None, "the plan only updates records it linked before"
        if isinstance(write, Update):
            if write.changes:
                await client.update("students", managebac_id, write.changes)
                outcome = Outcome.UPDATED if outcome is Outcome.UNCHANGED else outcome
        elif isinstance(write, Archive):
            when = write.withdrawn_on
            await client.archive(
                "students", managebac_id, {"withdrawn_on": when.isoformat()} if when else {}
            )
            outcome = Outcome.ARCHIVED
        elif isinstance(write, Unarchive):
            await client.unarchive("students", managebac_id)
            outcome = Outcome.UNARCHIVED
    return managebac_id, outcome


async def _create_or_adopt(write: Create, ports: SchoolPorts) -> tuple[RemoteUser, bool]:
    """Create the student; if ManageBac+ already has them, adopt that record instead."""
    client = ports.managebac
    try:
        return await client.create("students", write.body()), False
    except ManagebacRejectedError as exc:
        if not exc.already_taken:
            raise
        student_id = str(write.payload.get("student_id", ""))
        existing = await client.find_student(student_id) if student_id else None
        if existing is None:
            raise  # taken by someone else's e-mail: a real conflict for a person to resolve
    if existing.archived:
        await client.unarchive("students", existing.id)
    await client.update("students", existing.id, write.adopt().changes)
    return existing, True


def _pushed(previous: SyncRecord | None) -> PushedState | None:
    if previous is None or previous.managebac_id is None:
        return None
    return PushedState(
        fields=previous.pushed, archived=previous.archived, managebac_id=previous.managebac_id
    )


class _Recorder:
    """Write the ledger row for one change, whatever its outcome."""

    def __init__(self, ledger: Ledger, change: QueuedChange) -> None:
        self._ledger = ledger
        self._change = change

    async def applied(
        self,
        record: IsamsStudent | None,
        plan: Plan,
        managebac_id: int | None,
        outcome: Outcome,
    ) -> None:
        """Remember what ManageBac+ now holds from us."""
        change = self._change
        state = plan.state or PushedState()
        now = datetime.now(UTC)
        last_updated = record.last_updated if record is not None else None
        wrote = outcome is not Outcome.UNCHANGED
        await self._ledger.put(
            SyncRecord(
                school=change.school,
                kind=KIND,
                isams_id=change.event.record_id,
                status=Status.ARCHIVED if state.archived else Status.SYNCED,
                managebac_id=managebac_id,
                pushed=dict(state.fields),
                content_hash=content_hash(state.fields),
                archived=state.archived,
                reason=_archive_reason(change) if state.archived else None,
                warnings=plan.warnings,
                source_updated_at=last_updated.isoformat() if last_updated else None,
                last_received_at=change.received_at,
                last_applied_at=now,
                latency_ms=(now - change.received_at).total_seconds() * 1000 if wrote else None,
            )
        )

    async def skipped(
        self, previous: SyncRecord | None, reason: str, warnings: tuple[str, ...]
    ) -> None:
        """Record why the student is not (or no longer) written, keeping any link."""
        change = self._change
        base = previous or SyncRecord(
            school=change.school, kind=KIND, isams_id=change.event.record_id, status=Status.SKIPPED
        )
        status = Status.SKIPPED if base.managebac_id is None else base.status
        await self._ledger.put(
            replace(
                base,
                status=status,
                reason=reason,
                warnings=warnings,
                last_received_at=change.received_at,
            )
        )


def _archive_reason(change: QueuedChange) -> str:
    if change.event.action == "deleted":
        return "archived: deleted in iSAMS"
    return "archived: not current in iSAMS"
