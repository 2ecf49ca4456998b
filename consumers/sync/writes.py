"""The write and record steps every kind shares: a plan's writes made in ManageBac+, the
ledger row that follows, and the stale check.

Also the one place where the ports' errors become the runner's two kinds of failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from consumers.domain.drift import adoption_changes
from consumers.domain.plan import (
    Archive,
    Create,
    Plan,
    PushedState,
    Unarchive,
    Update,
    content_hash,
    is_stale,
)
from consumers.domain.records import Status, SyncRecord
from consumers.events import QueuedChange
from consumers.outcomes import Outcome, PermanentFailureError, Result, TransientFailureError
from consumers.ports import (
    IsamsAuthError,
    IsamsError,
    ManagebacPort,
    ManagebacRejectedError,
    ManagebacUnavailableError,
    RemoteUser,
    Resource,
)

FindExisting = Callable[[Create], Awaitable[RemoteUser | None]]


@asynccontextmanager
async def failures_translated() -> AsyncIterator[None]:
    """Turn adapter errors into PermanentFailureError (DLQ) or TransientFailureError (retry)."""
    try:
        yield
    except ManagebacRejectedError as exc:
        raise PermanentFailureError("managebac-rejected", exc.body[:1000]) from exc
    except ManagebacUnavailableError as exc:
        raise TransientFailureError(str(exc)) from exc
    except IsamsAuthError as exc:
        raise PermanentFailureError("isams-auth", str(exc)) from exc
    except IsamsError as exc:
        raise TransientFailureError(str(exc)) from exc


async def apply_writes(
    plan: Plan,
    resource: Resource,
    managebac_id: int | None,
    client: ManagebacPort,
    find_existing: FindExisting,
) -> tuple[int | None, Outcome]:
    """Make the plan's writes in order; return the ManageBac+ id and what happened.

    A create is one request: the user is created, and only when ManageBac+ says "already
    taken" is the existing one found (`find_existing`: by student_id or e-mail) and adopted.
    An update sends only the changed fields; a plan with nothing to change sends nothing.
    """
    outcome = Outcome.UNCHANGED
    for write in plan.writes:
        if isinstance(write, Create):
            user, adopted = await _create_or_adopt(write, resource, client, find_existing)
            managebac_id = user.id
            outcome = Outcome.ADOPTED if adopted else Outcome.CREATED
            continue
        assert managebac_id is not None, "plans only change records linked before"
        if isinstance(write, Update):
            if write.changes:
                await client.update(resource, managebac_id, write.changes)
                outcome = Outcome.UPDATED if outcome is Outcome.UNCHANGED else outcome
        elif isinstance(write, Archive):
            await client.archive(resource, managebac_id, write.body())
            outcome = Outcome.ARCHIVED
        elif isinstance(write, Unarchive):
            await client.unarchive(resource, managebac_id)
            outcome = Outcome.UNARCHIVED
    return managebac_id, outcome


async def _create_or_adopt(
    write: Create,
    resource: Resource,
    client: ManagebacPort,
    find_existing: FindExisting,
) -> tuple[RemoteUser, bool]:
    """Create the user, or adopt the one ManageBac+ already has: never a duplicate.

    An adopted user gets only the fields where ManageBac+ differs from iSAMS.
    """
    try:
        return await client.create(resource, write.body()), False
    except ManagebacRejectedError as exc:
        if not exc.already_taken:
            raise
        existing = await find_existing(write)
        if existing is None:
            raise  # taken by a different user: a real conflict for a person to resolve
    if existing.archived:
        await client.unarchive(resource, existing.id)
    changes = adoption_changes(write, existing.fields)
    if changes:
        await client.update(resource, existing.id, changes)
    return existing, True


def pushed_state(record: SyncRecord | None) -> PushedState | None:
    """Return what ManageBac+ holds from us, or None when the record was never written."""
    if record is None or record.managebac_id is None:
        return None
    return PushedState(
        fields=record.pushed, archived=record.archived, managebac_id=record.managebac_id
    )


def applied(
    base: SyncRecord,
    plan: Plan,
    managebac_id: int | None,
    outcome: Outcome,
    received_at: datetime,
    archive_reason: str | None = None,
    **changes: Any,
) -> SyncRecord:
    """Return the ledger row after the plan's writes succeeded."""
    state = plan.state or PushedState()
    now = datetime.now(UTC)
    wrote = outcome is not Outcome.UNCHANGED
    return replace(
        base,
        status=Status.ARCHIVED if state.archived else Status.SYNCED,
        managebac_id=managebac_id,
        pushed=dict(state.fields),
        content_hash=content_hash(state.fields),
        archived=state.archived,
        reason=archive_reason if state.archived else None,
        warnings=plan.warnings,
        last_received_at=received_at,
        last_applied_at=now,
        latency_ms=(now - received_at).total_seconds() * 1000 if wrote else base.latency_ms,
        **changes,
    )


def skipped(
    base: SyncRecord, reason: str, warnings: tuple[str, ...], received_at: datetime, **changes: Any
) -> SyncRecord:
    """Return the ledger row of a record not (or no longer) written, keeping any link."""
    status = Status.SKIPPED if base.managebac_id is None else base.status
    return replace(
        base,
        status=status,
        reason=reason,
        warnings=warnings,
        last_received_at=received_at,
        **changes,
    )


STALE = Result(Outcome.STALE, reason="an older version than the one already applied")


def is_stale_change(
    change: QueuedChange, last_updated: datetime | None, previous: SyncRecord | None
) -> bool:
    """Tell whether a change carries an older version than the one last applied.

    Only a change that brings state of its own can be stale: a fat event (its record), or
    a staff event's `managebacAccess` (an older "access granted" sent again must not undo
    a later revocation). A thin event is applied with what iSAMS holds now.
    """
    brings_state = change.data.record is not None or change.data.managebacAccess is not None
    return (
        brings_state and previous is not None and is_stale(last_updated, previous.source_updated_at)
    )


def applied_version(last_updated: datetime | None, base: SyncRecord) -> str | None:
    """Return the iSAMS version now applied: the record's lastUpdated, else the last one."""
    return last_updated.isoformat() if last_updated is not None else base.source_updated_at
