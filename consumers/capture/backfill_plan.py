"""The plan of a backfill: what the consumers would do with every change it queues.

A backfill's changes are applied by the consumers, which diff each record against the
ledger's memory of what was pushed; so its plan is reconcile's planning (the same code, the
mapping core's plans) with the ledger standing in for ManageBac+ and an applier that writes
nothing. It reads iSAMS only (each pupil's contacts, on top of the lists the backfill read),
never ManageBac+.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from consumers.capture.apply import DryApplier
from consumers.capture.drift_parents import reconcile_parents
from consumers.capture.drift_users import reconcile_students, reconcile_teachers
from consumers.capture.holdings import from_ledger
from consumers.capture.isams_read import IsamsState, Progress, read_contacts
from consumers.capture.plan_report import RunPlan
from consumers.capture.run_state import RunState
from consumers.domain.guard import GuardDecision
from consumers.domain.records import SyncRecord
from consumers.ports import LedgerPort, Record
from consumers.sync.context import SchoolPorts


async def plan_backfill(
    ports: SchoolPorts,
    ledger: LedgerPort,
    rows: Iterable[SyncRecord],
    students: Iterable[Record],
    alumni: Iterable[Record],
    employees: Iterable[Record],
    removed: Iterable[tuple[str, str]],
    decision: GuardDecision,
    progress: Progress | None = None,
) -> RunPlan:
    """Plan every record the backfill read (and the removals it found) against the ledger's
    `rows` (as the backfill read them)."""
    on_roll, gone, rows = list(students), frozenset(removed), list(rows)
    school_ids = [str(record["schoolId"]) for record in on_roll if record.get("schoolId")]
    contacts = await read_contacts(ports.isams, school_ids, progress)
    run = RunState(
        ports=ports,
        ledger=ledger,
        rows={(row.kind, row.isams_id): row for row in rows},
        isams=IsamsState.of(on_roll, alumni, employees, contacts),
        holdings=from_ledger(rows),
        applier=DryApplier(),
        decision=decision,
        unexplained=gone,
        now=datetime.now(UTC),
        only_removals=gone,
    )
    await reconcile_students(run)
    if ports.settings.staff.enabled:
        await reconcile_teachers(run)
    await reconcile_parents(run)
    return run.plan
