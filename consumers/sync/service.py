"""Process one change: route it to its kind's sync, with the school's ports and the ledger.

The service is the only place that sees the ports together (iSAMS, ManageBac+, ledger);
each kind's steps live in their own module.
"""

from __future__ import annotations

from collections.abc import Mapping

from consumers.blocks import SchoolBlocks
from consumers.events import QueuedChange
from consumers.outcomes import PermanentFailureError, Result, SchoolBlockedError
from consumers.ports import LedgerPort, ManagebacBlockedError
from consumers.sync.context import KeyedLocks, SchoolPorts, SyncContext
from consumers.sync.parents import sync_contact
from consumers.sync.students import sync_student
from consumers.sync.teachers import sync_staff
from consumers.sync.year_groups import directory_for

__all__ = ["SchoolPorts", "SyncService"]


class SyncService:
    """Turn each queued change into ManageBac+ writes and ledger rows."""

    def __init__(
        self,
        schools: Mapping[str, SchoolPorts],
        ledger: LedgerPort,
        blocks: SchoolBlocks | None = None,
    ) -> None:
        self.ledger = ledger
        self.blocks = blocks or SchoolBlocks.of(ledger, schools)
        locks = KeyedLocks()  # shared by every school: keys carry the school id
        self._contexts = {
            school: SyncContext(
                ports, ledger, locks, directory_for(ports.settings, ports.managebac)
            )
            for school, ports in schools.items()
        }

    @property
    def contexts(self) -> Mapping[str, SyncContext]:
        """Each school's sync context (its ports, the ledger, the shared locks)."""
        return self._contexts

    async def process(self, change: QueuedChange) -> Result:
        """Apply one change; raise PermanentFailureError, TransientFailureError or
        SchoolBlockedError (the school's token is refused: the change waits) on failure."""
        context = self._contexts.get(change.school)
        if context is None:
            raise PermanentFailureError(
                "unknown-school", f"school {change.school!r} is not in the schools file"
            )
        kind = change.event.kind
        reason = self.blocks.reason(change.school, kind)
        if reason is not None:
            raise SchoolBlockedError(change.school, reason)
        try:
            if kind == "student":
                return await sync_student(change, context)
            if kind == "contact":
                return await sync_contact(change, context)
            return await sync_staff(change, context)
        except ManagebacBlockedError as exc:
            await self.blocks.refused(change.school, exc)
            raise SchoolBlockedError(
                change.school, self.blocks.reason(change.school, kind) or exc.reason
            ) from exc
