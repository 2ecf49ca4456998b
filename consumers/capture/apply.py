"""Carry out a run's plan, or only pretend to: the one seam between a dry run and a real one.

Reconcile (and the plan of a backfill) decide every record the same way whether they write
or not; only the applier differs. `LiveApplier` makes the ManageBac+ writes with the change
path's own step (`apply_writes`: create or adopt, update, archive, unarchive) and the link
calls, and puts ledger rows. `DryApplier` writes nothing anywhere and hands out stand-in ids
(negative, never sent) for users it would create, so the links to them can be planned too.
"""

from __future__ import annotations

from typing import Protocol

from consumers.domain.plan import Archive, Create, Plan, Unarchive, Update
from consumers.domain.records import SyncRecord
from consumers.domain.relationships import Link, LinkAction, Relink, Unlink
from consumers.outcomes import Outcome
from consumers.ports import LedgerPort, ManagebacPort, Resource
from consumers.sync.writes import FindExisting, apply_writes


class Applier(Protocol):
    """Where a run's decisions go."""

    @property
    def dry_run(self) -> bool: ...

    async def write(
        self, resource: Resource, plan: Plan, managebac_id: int | None, find: FindExisting
    ) -> tuple[int | None, Outcome]:
        """Make a user's writes; return its ManageBac+ id and what happened."""
        ...

    async def link(self, action: LinkAction, parent_id: int, student_id: int) -> None:
        """Make one link's write (link, relink or unlink)."""
        ...

    async def record(self, row: SyncRecord) -> None:
        """Put a ledger row."""
        ...


class LiveApplier:
    """Write to ManageBac+ and the ledger."""

    dry_run = False

    def __init__(self, client: ManagebacPort, ledger: LedgerPort) -> None:
        self._client = client
        self._ledger = ledger

    async def write(
        self, resource: Resource, plan: Plan, managebac_id: int | None, find: FindExisting
    ) -> tuple[int | None, Outcome]:
        return await apply_writes(plan, resource, managebac_id, self._client, find)

    async def link(self, action: LinkAction, parent_id: int, student_id: int) -> None:
        if isinstance(action, Link):
            # Reconcile links only what ManageBac+'s own list lacks: post it first.
            await self._client.link_child(
                parent_id, student_id, action.relationship, likely_new=True
            )
        elif isinstance(action, Relink):
            await self._client.relink_child(parent_id, student_id, action.relationship)
        elif isinstance(action, Unlink):
            await self._client.unlink_child(parent_id, student_id)

    async def record(self, row: SyncRecord) -> None:
        await self._ledger.put(row)


class DryApplier:
    """Write nothing; give each user it would create a stand-in id (-1, -2, …)."""

    dry_run = True

    def __init__(self) -> None:
        self._next = -1

    async def write(
        self, resource: Resource, plan: Plan, managebac_id: int | None, find: FindExisting
    ) -> tuple[int | None, Outcome]:
        outcome = Outcome.UNCHANGED
        for write in plan.writes:
            if isinstance(write, Create):
                managebac_id, self._next = self._next, self._next - 1
                outcome = Outcome.CREATED
            elif isinstance(write, Archive):
                outcome = Outcome.ARCHIVED
            elif isinstance(write, Unarchive):
                outcome = Outcome.UNARCHIVED
            elif isinstance(write, Update) and outcome is Outcome.UNCHANGED:
                outcome = Outcome.UPDATED
        return managebac_id, outcome

    async def link(self, action: LinkAction, parent_id: int, student_id: int) -> None:
        return None

    async def record(self, row: SyncRecord) -> None:
        return None
