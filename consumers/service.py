"""Process one change: load the record's state, plan with the pure core, apply, record.

The service is the only place that sees the ports together (iSAMS, ManageBac+, ledger);
each kind's steps live in their own module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.events import QueuedChange
from app.settings import School
from consumers.adapters.isams import IsamsClient
from consumers.adapters.ledger import Ledger
from consumers.adapters.managebac import ManagebacClient
from consumers.outcomes import Outcome, PermanentFailureError, Result


@dataclass(frozen=True)
class SchoolPorts:
    """One school's settings and the clients that reach its two systems."""

    settings: School
    isams: IsamsClient
    managebac: ManagebacClient


class SyncService:
    """Turn each queued change into ManageBac+ writes and a ledger row."""

    def __init__(self, schools: Mapping[str, SchoolPorts], ledger: Ledger) -> None:
        self._schools = dict(schools)
        self.ledger = ledger

    async def process(self, change: QueuedChange) -> Result:
        """Apply one change; raise PermanentFailureError or TransientFailureError on failure."""
        ports = self._schools.get(change.school)
        if ports is None:
            raise PermanentFailureError(
                "unknown-school", f"school {change.school!r} is not in the schools file"
            )
        kind = change.event.kind
        if kind == "student":
            from consumers.sync_students import sync_student

            return await sync_student(change, ports, self.ledger)
        return Result(Outcome.SKIPPED, reason=f"{kind} records are not synced by this version")
