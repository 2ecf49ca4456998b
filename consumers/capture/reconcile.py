"""Reconcile: compare one school's ManageBac+ with the mapped iSAMS state and repair drift.

docs/design.md §6. Reads the ledger, iSAMS (pupils on roll and leavers, staff, each pupil's
contacts) and ManageBac+ (every student, parent and teacher, archived too, with the parents'
links), then plans every record with the mapping core against what ManageBac+ holds now:
drift is any difference in the fields this service sends, the year group, the archived state
or the links, and iSAMS wins. The repairs are written before the run returns, and the ledger
rows follow, so later changes diff against the truth. Users this service manages that iSAMS
no longer has are archived, unless the removals guard holds them (more than 10% of the
synced students and staff, unexplained: leavers in iSAMS's alumni are explained). Unmanaged
ManageBac+ users that look like managed ones are reported, never touched.

A dry run reads the same, decides the same, and writes nothing but the run's own ledger row.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from consumers.capture.apply import DryApplier, LiveApplier
from consumers.capture.drift_parents import reconcile_parents
from consumers.capture.drift_users import reconcile_students, reconcile_teachers
from consumers.capture.holdings import read_managebac
from consumers.capture.isams_read import IsamsState, Progress, read_isams
from consumers.capture.lookalikes import PossibleDuplicate, possible_duplicates
from consumers.capture.plan_report import RunPlan
from consumers.capture.run_state import RunState
from consumers.domain.guard import GuardDecision, guard_archives
from consumers.domain.records import Status, SyncRecord
from consumers.ports import (
    IsamsError,
    LedgerPort,
    ManagebacBlockedError,
    ManagebacError,
    Resource,
)
from consumers.sync.context import SchoolPorts

RUN_KIND = "reconcile"
log = logging.getLogger(__name__)


class ReconcileError(Exception):
    """The run stopped part-way (a system did not answer, or refused the token); says why.

    `plan` holds what was done (or planned) before it stopped.
    """

    def __init__(self, message: str, plan: RunPlan | None = None) -> None:
        super().__init__(message)
        self.plan = plan or RunPlan()


@dataclass(frozen=True)
class ReconcileReport:
    """What a reconcile found and repaired (or, in a dry run, would repair)."""

    run_id: str
    school: str
    dry_run: bool
    plan: RunPlan
    decision: GuardDecision
    removals: int
    synced: int
    duplicates: list[PossibleDuplicate] = field(default_factory=list)
    read: dict[str, int] = field(default_factory=dict)

    @property
    def held(self) -> bool:
        """Tell whether the removals guard held back archives."""
        return not self.decision.allowed

    @property
    def failures(self) -> int:
        return len(self.plan.failures)

    def summary(self) -> str:
        """Say in one line what the run did (counts only: this goes in the ledger and logs)."""
        done = "would write" if self.dry_run else "wrote"
        writes = self.plan.writes() - (0 if self.dry_run else self.failures)
        line = (
            f"reconcile {self.run_id}{' (dry run)' if self.dry_run else ''}: "
            f"{done} {writes} repair(s); {sum(self.plan.unchanged.values())} record(s) "
            f"unchanged; {len(self.duplicates)} possible duplicate(s)"
        )
        if self.failures:
            line += f"; {self.failures} refused by ManageBac+"
        if self.removals:
            line += f"; {self.removals} managed user(s) no longer in iSAMS"
        if self.held:
            line += f". Removals held: {self.decision.reason}"
        return line

    def to_json(self) -> dict[str, Any]:
        return {
            "command": "reconcile",
            "school": self.school,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "summary": self.summary(),
            "guard": {
                "allowed": self.decision.allowed,
                "reason": self.decision.reason,
                "removals": self.removals,
                "synced": self.synced,
            },
            "read": self.read,
            **self.plan.to_json(),
            "possible_duplicates": [duplicate.to_json() for duplicate in self.duplicates],
        }


async def run_reconcile(
    ports: SchoolPorts,
    ledger: LedgerPort,
    *,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> ReconcileReport:
    """Reconcile one school; raise ReconcileError when iSAMS or ManageBac+ stop the run."""
    school = ports.settings.id
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    staff = ports.settings.staff.enabled
    run: RunState | None = None
    try:
        rows = await ledger.records(school)
        isams = await read_isams(ports.isams, progress)
        resources: tuple[Resource, ...] = ("students", "parents", "teachers")
        resources = resources if staff else resources[:2]
        holdings = await read_managebac(ports.managebac, resources, progress)
        unexplained, synced = unexplained_removals(rows, isams, staff)
        decision = guard_archives(len(unexplained), synced, force)
        run = RunState(
            ports=ports,
            ledger=ledger,
            rows={(row.kind, row.isams_id): row for row in rows},
            isams=isams,
            holdings=holdings,
            applier=DryApplier() if dry_run else LiveApplier(ports.managebac, ledger),
            decision=decision,
            unexplained=unexplained,
            now=datetime.now(UTC),
        )
        await reconcile_students(run)
        if staff:
            await reconcile_teachers(run)
        await reconcile_parents(run)
    except (ManagebacError, IsamsError) as exc:
        message = _stopped(exc)
        await _record(ledger, school, run_id, Status.FAILED, message)
        log.error("reconcile stopped", extra={"school": school, "run_id": run_id})
        raise ReconcileError(message, run.plan if run is not None else None) from exc
    report = ReconcileReport(
        run_id=run_id,
        school=school,
        dry_run=dry_run,
        plan=run.plan,
        decision=decision,
        removals=len(unexplained),
        synced=synced,
        duplicates=possible_duplicates(run),
        read={
            "isams_students": len(isams.students),
            "isams_alumni": len(isams.alumni),
            "isams_employees": len(isams.employees),
            **{f"managebac_{resource}": len(holdings.users[resource]) for resource in resources},
        },
    )
    ok = decision.allowed and not report.failures
    await _record(ledger, school, run_id, Status.SYNCED if ok else Status.FAILED, report.summary())
    log.info(
        "reconcile finished",
        extra={
            "school": school,
            "run_id": run_id,
            "dry_run": dry_run,
            "writes": report.plan.writes(),
            "failures": report.failures,
            "held": report.held,
        },
    )
    return report


def unexplained_removals(
    rows: Iterable[SyncRecord], isams: IsamsState, staff: bool
) -> tuple[frozenset[tuple[str, str]], int]:
    """Return the managed students and staff iSAMS no longer lists at all, and how many
    managed ones are active: the guard's numerator and denominator.

    A pupil in the alumni is explained (they left, iSAMS says when), so is an employee
    listed as not current; parents follow their children and are not counted.
    """
    kinds = ("student", "staff") if staff else ("student",)
    active = [row for row in rows if row.kind in kinds and row.active_in_managebac]
    listed = {"student": isams.pupils.keys(), "staff": isams.employees.keys()}
    gone = frozenset(
        (row.kind, row.isams_id) for row in active if row.isams_id not in listed[row.kind]
    )
    return gone, len(active)


def _stopped(exc: ManagebacError | IsamsError) -> str:
    if isinstance(exc, ManagebacBlockedError):
        return f"ManageBac+ refused the school's token: {exc.reason}"
    if isinstance(exc, IsamsError):
        return f"iSAMS did not answer as it should: {exc}"
    return f"ManageBac+ did not answer as it should: {exc}"


async def _record(ledger: LedgerPort, school: str, run_id: str, status: Status, why: str) -> None:
    """Put the run's own ledger row (the console lists reconcile runs)."""
    await ledger.put(
        SyncRecord(
            school=school,
            kind=RUN_KIND,
            isams_id=run_id,
            status=status,
            reason=why,
            last_applied_at=datetime.now(UTC),
        )
    )
