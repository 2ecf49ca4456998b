"""What one reconcile (or backfill plan) run works from and builds up as it goes.

The run reads everything first (ledger, iSAMS, ManageBac+), then goes kind by kind:
students, teachers, then parents and their links, which need to know where each student
ended up (`students`). `managed` says, per ManageBac+ resource, which users this service
manages once the run is done, and as which iSAMS record: look-alikes are judged against it.
"""

from __future__ import annotations

import json
from collections.abc import KeysView, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from consumers.capture.apply import Applier
from consumers.capture.holdings import RESOURCES, Holdings
from consumers.capture.isams_read import IsamsState
from consumers.capture.plan_report import RunPlan
from consumers.domain.guard import GuardDecision
from consumers.domain.plan import Fields, FieldValue
from consumers.domain.records import Status, SyncRecord
from consumers.ports import LedgerPort, ManagebacRejectedError, Resource
from consumers.sync.context import SchoolPorts, SyncContext
from consumers.sync.year_groups import directory_for


@dataclass(frozen=True, slots=True)
class End:
    """Where a user stands in ManageBac+ after the run: its id (negative: a stand-in for one
    a dry run would create), whether it is active, and whether the run created it."""

    managebac_id: int | None
    active: bool
    created: bool = False


NOWHERE = End(None, False)


@dataclass(frozen=True, slots=True)
class Managed:
    """A ManageBac+ user this service manages: the iSAMS record behind it and its fields."""

    kind: str
    isams_id: str
    fields: Fields


@dataclass
class RunState:
    """One run's inputs, its growing plan, and where each user ended up."""

    ports: SchoolPorts
    ledger: LedgerPort
    rows: Mapping[tuple[str, str], SyncRecord]
    isams: IsamsState
    holdings: Holdings
    applier: Applier
    decision: GuardDecision
    unexplained: frozenset[tuple[str, str]]
    now: datetime
    only_removals: frozenset[tuple[str, str]] | None = None
    plan: RunPlan = field(default_factory=RunPlan)
    students: dict[str, End] = field(default_factory=dict)
    managed: dict[Resource, dict[int, Managed]] = field(
        default_factory=lambda: {resource: {} for resource in RESOURCES}
    )

    @property
    def school(self) -> str:
        return self.ports.settings.id

    @cached_property
    def context(self) -> SyncContext:
        """The sync context the change path's rules are built from (with a directory of the
        school's year groups when it maps grades: read before the students are planned)."""
        directory = directory_for(self.ports.settings, self.ports.managebac)
        return SyncContext(self.ports, self.ledger, year_groups=directory)

    def gone(self, kind: str, listed: Mapping[str, object]) -> list[str]:
        """Return the ids of the ledger's records of `kind` iSAMS no longer lists (only those
        of `only_removals` when set: a backfill deletes only the synced ones)."""
        return [
            row.isams_id
            for row in self.rows_of(kind)
            if row.isams_id not in listed
            and (self.only_removals is None or (kind, row.isams_id) in self.only_removals)
        ]

    def row(self, kind: str, isams_id: str) -> SyncRecord | None:
        """Return the ledger row as it was when the run started."""
        return self.rows.get((kind, isams_id))

    def rows_of(self, kind: str) -> list[SyncRecord]:
        return [row for (row_kind, _), row in self.rows.items() if row_kind == kind]

    async def base_row(self, kind: str, isams_id: str) -> SyncRecord:
        """Return the ledger row as it is now (a change may have landed since the run
        started), or a new one."""
        found = await self.ledger.get(self.school, kind, isams_id)
        return found or SyncRecord(
            school=self.school, kind=kind, isams_id=isams_id, status=Status.SKIPPED
        )

    def student(self, school_id: str) -> End:
        return self.students.get(school_id, NOWHERE)

    def manage(
        self,
        resource: Resource,
        managebac_id: int,
        kind: str,
        isams_id: str,
        fields: Mapping[str, FieldValue],
    ) -> None:
        """Note that this service manages a ManageBac+ user after the run."""
        self.managed[resource][managebac_id] = Managed(kind, isams_id, dict(fields))

    def taken(self, resource: Resource) -> KeysView[int]:
        """Return the ids of `resource` some record of this run already manages (a live
        view, not a copy: it is asked once per creation)."""
        return self.managed[resource].keys()


_ROW_FIELDS = (
    "status",
    "managebac_id",
    "related_id",
    "person_key",
    "pushed",
    "archived",
    "reason",
    "warnings",
    "source_updated_at",
)


def row_changed(before: SyncRecord, after: SyncRecord) -> bool:
    """Tell whether a row says anything new (its times aside), so an unchanged record puts
    no row: a second run changes nothing in the ledger."""
    if before.source.to_json() != after.source.to_json():
        return True
    return any(
        _plain(getattr(before, name)) != _plain(getattr(after, name)) for name in _ROW_FIELDS
    )


def _plain(value: Any) -> Any:
    """Compare values as the ledger stores them (JSON: tuples are lists)."""
    if isinstance(value, tuple | list | dict):
        return json.loads(json.dumps(value, sort_keys=True, default=str))
    return value


def refusal(exc: ManagebacRejectedError) -> str:
    """Say why ManageBac+ refused a write: its status and, for a 422, the fields and their
    messages (never the values sent)."""
    try:
        body = json.loads(exc.body)
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, dict) and errors:
        said = "; ".join(
            f"{name} {', '.join(str(message) for message in messages)}"
            if isinstance(messages, list)
            else str(name)
            for name, messages in sorted(errors.items())
        )
        return f"ManageBac+ refused it ({exc.status}: {said[:300]})"
    return f"ManageBac+ refused it ({exc.status})"
