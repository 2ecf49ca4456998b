"""The one sync pipeline of a record: load → fetch → parse → stale? → plan → write → record.

Students and teachers run it as it is, each kind giving its small hooks (`KindSteps`):
how to fetch and parse its record, how to plan it (the pure core), how ManageBac+ matches
an existing user, why an archive happened, and what to remember of the event. Parents
(consumers/sync/parents.py) share its fetch, parse and stale steps for the contact, then
plan and write one person at a time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from consumers.domain.plan import Create, Plan, PushedState, Skip
from consumers.domain.records import SourceState, Status, SyncRecord
from consumers.events import QueuedChange
from consumers.outcomes import Outcome, Result
from consumers.ports import ManagebacPort, Record, RemoteUser, Resource
from consumers.sync.context import SchoolPorts, SyncContext
from consumers.sync.writes import (
    STALE,
    applied,
    applied_version,
    apply_writes,
    is_stale_change,
    pushed_state,
    skipped,
)


class Versioned(Protocol):
    """A parsed iSAMS record: what the pipeline reads of it itself."""

    @property
    def last_updated(self) -> datetime | None: ...


R = TypeVar("R", bound=Versioned)


@dataclass(frozen=True)
class Planning(Generic[R]):
    """What a kind's plan gets: the parsed record (None: gone), what ManageBac+ holds from
    us, what was remembered of iSAMS, and the change itself."""

    record: R | None
    previous: PushedState | None
    source: SourceState
    change: QueuedChange
    context: SyncContext


def _keep(_change: QueuedChange, source: SourceState) -> SourceState:
    return source


@dataclass(frozen=True)
class KindSteps(Generic[R]):
    """One kind's hooks into the pipeline."""

    kind: str
    resource: Resource
    fetch: Callable[[SchoolPorts, str], Awaitable[Record | None]]
    parse: Callable[[object], R | Skip]
    plan: Callable[[Planning[R]], Plan]
    find_existing: Callable[[ManagebacPort, Create], Awaitable[RemoteUser | None]]
    archive_reason: Callable[[QueuedChange, R | None], str]
    remember: Callable[[QueuedChange, SourceState], SourceState] = field(default=_keep)


async def record_of(
    change: QueuedChange, fetch: Callable[[], Awaitable[Record | None]]
) -> Record | None:
    """Take the record from a fat event, or fetch it from iSAMS (not for a deletion)."""
    raw = change.data.record
    if raw is None and change.event.action != "deleted":
        raw = await fetch()
    return raw


async def sync_record(steps: KindSteps[R], change: QueuedChange, context: SyncContext) -> Result:
    """Bring one record's ManageBac+ user in line with iSAMS; record where it stands."""
    ledger = context.ledger
    isams_id = change.event.record_id
    previous = await ledger.get(context.school, steps.kind, isams_id)
    base = previous or SyncRecord(
        school=context.school, kind=steps.kind, isams_id=isams_id, status=Status.SKIPPED
    )
    source = steps.remember(change, base.source)
    raw = await record_of(change, lambda: steps.fetch(context.ports, isams_id))
    record = steps.parse(raw) if raw is not None else None
    if isinstance(record, Skip):
        await ledger.put(skipped(base, record.reason, (), change.received_at, source=source))
        return Result(Outcome.SKIPPED, reason=record.reason)
    version = version_of(record, change)
    if record is not None and is_stale_change(change, version, previous):
        return STALE

    plan = steps.plan(Planning(record, pushed_state(previous), source, change, context))
    # A skip is applied too: an older version parked for a retry must not undo it.
    remembered: dict[str, Any] = {
        "source": source,
        "source_updated_at": applied_version(version, base),
    }
    if plan.skip is not None:
        reason = plan.skip.reason
        await ledger.put(skipped(base, reason, plan.warnings, change.received_at, **remembered))
        return Result(Outcome.SKIPPED, reason=reason)

    client = context.ports.managebac

    async def find(write: Create) -> RemoteUser | None:
        return await steps.find_existing(client, write)

    managebac_id, outcome = await apply_writes(
        plan, steps.resource, base.managebac_id, client, find
    )
    await ledger.put(
        applied(
            base,
            plan,
            managebac_id,
            outcome,
            change.received_at,
            archive_reason=steps.archive_reason(change, record),
            **remembered,
        )
    )
    return Result(outcome, wrote=outcome is not Outcome.UNCHANGED)


def version_of(record: Versioned | None, change: QueuedChange) -> datetime | None:
    """Return the iSAMS version a change brings: the record's `lastUpdated`, or, for records
    iSAMS gives none (employees), the time of the change itself (the event's timestamp).

    Either way one record's versions come from one clock, so a redelivered older change is
    recognised as older (docs/design.md §3: a stale fat event changes nothing).
    """
    if record is None:
        return None
    return record.last_updated if record.last_updated is not None else change.timestamp


async def by_email(resource: Resource, client: ManagebacPort, write: Create) -> RemoteUser | None:
    """Find the ManageBac+ user a create would clash with, by its e-mail."""
    email = write.payload.get("email")
    return await client.find_by_email(resource, email) if isinstance(email, str) else None
