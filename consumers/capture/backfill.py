"""Backfill: read a school's whole iSAMS export and queue a change for every record.

Records go on `isams.changes` as fat events, so the consumers apply them like any change
(no iSAMS lock, no maintenance mode: iSAMS only answers paged reads). Records the ledger
has as synced but iSAMS no longer lists are queued as deletions. Before anything is queued
the archive guard counts what the run would archive; above 10% of the synced users it
stops and records why, unless forced (an emptied export must not empty ManageBac+).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from consumers.capture.backfill_plan import plan_backfill
from consumers.capture.isams_read import Progress, collect
from consumers.capture.plan_report import RunPlan
from consumers.domain.guard import GuardDecision, guard_archives
from consumers.domain.isams import is_current_status
from consumers.domain.records import Status, SyncRecord
from consumers.events import ChangeEvent, to_message
from consumers.ports import LedgerPort, PublisherPort
from consumers.settings import Topics
from consumers.sync.context import SchoolPorts

BATCH = 200
RUN_KIND = "backfill"


@dataclass(frozen=True)
class BackfillReport:
    """What a backfill found, what the guard decided, and what it queued."""

    run_id: str
    students: int
    staff: int
    removals: int
    would_archive: int
    synced: int
    decision: GuardDecision
    queued: int
    dry_run: bool
    events: list[ChangeEvent] = field(default_factory=list, repr=False)
    plan: RunPlan | None = field(default=None, repr=False)  # a dry run's, per record

    def summary(self) -> str:
        """Say in one line what the run did."""
        head = (
            f"backfill {self.run_id}: {self.students} students and {self.staff} staff in "
            f"iSAMS, {self.removals} synced record(s) no longer there; would archive "
            f"{self.would_archive} of {self.synced} synced users"
        )
        if not self.decision.allowed:
            return f"{head}. Stopped: {self.decision.reason}"
        if self.dry_run:
            return f"{head}. Dry run: {len(self.events)} change(s) would be queued."
        return f"{head}. Queued {self.queued} change(s)."


async def run_backfill(
    ports: SchoolPorts,
    ledger: LedgerPort,
    publisher: PublisherPort | None,
    topics: Topics,
    *,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    batch_size: int = BATCH,
) -> BackfillReport:
    """Read the export, guard, and (unless a dry run or stopped) queue every change.

    Changes go in batches of `batch_size`; if Kafka fails part-way, the error is raised and
    running the backfill again is safe (what was queued twice is applied once).
    """
    school = ports.settings.id
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    students = await collect(ports.isams.all_students(), "students", progress)
    alumni = await collect(ports.isams.all_alumni(), "alumni", progress)
    staff = await collect(ports.isams.all_employees(), "staff", progress)

    rows = await ledger.records(school)
    synced = {
        (row.kind, row.isams_id): row
        for row in rows
        if row.kind in ("student", "staff") and row.active_in_managebac
    }
    # Leavers are in /api/alumni, not /api/students: a pupil found there is explained (they
    # left, with a leavingDate) and syncs as a leaver; one found in neither list is an
    # unexplained removal, which the guard counts.
    listed_students = {str(r.get("schoolId")): r for r in alumni if r.get("schoolId")}
    listed_students |= {str(r.get("schoolId")): r for r in students if r.get("schoolId")}
    listed_staff = {str(r.get("id")): r for r in staff if r.get("id") is not None}
    listed = {("student", k): v for k, v in listed_students.items()} | {
        ("staff", k): v for k, v in listed_staff.items()
    }
    removed = [key for key in synced if key not in listed]
    leaving = [
        key
        for key, record in listed.items()
        if key in synced and not is_current_status(_text(record.get("systemStatus")))
    ]
    decision = guard_archives(len(removed), len(synced), force)

    events = [
        _event("student", "updated", sid, now, record) for sid, record in listed_students.items()
    ]
    events += [_event("staff", "updated", eid, now, record) for eid, record in listed_staff.items()]
    events += [_event(kind, "deleted", isams_id, now, None) for kind, isams_id in removed]

    plan = None
    if dry_run:
        plan = await plan_backfill(
            ports, ledger, rows, students, alumni, staff, removed, decision, progress
        )
    queued = 0
    if decision.allowed and not dry_run:
        assert publisher is not None, "a backfill that queues changes needs a publisher"
        webhook_id = f"backfill-{run_id}"
        for start in range(0, len(events), batch_size):
            chunk = events[start : start + batch_size]
            # The bulk topic: consumed beside the live changes with lower priority, so live
            # edits keep their latency while a whole school is being synced.
            await publisher.publish(
                topics.bulk, [to_message(e, school, webhook_id, now) for e in chunk]
            )
            queued += len(chunk)
            if progress is not None:
                progress("queued", queued, len(events))
    report = BackfillReport(
        run_id=run_id,
        students=len(listed_students),
        staff=len(listed_staff),
        removals=len(removed),
        would_archive=len(removed) + len(leaving),
        synced=len(synced),
        decision=decision,
        queued=queued,
        dry_run=dry_run,
        events=events,
        plan=plan,
    )
    await ledger.put(
        SyncRecord(
            school=school,
            kind=RUN_KIND,
            isams_id=run_id,
            status=Status.SYNCED if decision.allowed else Status.FAILED,
            reason=report.summary(),
            last_applied_at=datetime.now(UTC),
        )
    )
    return report


def _event(
    kind: str, action: str, isams_id: str, now: datetime, record: dict[str, Any] | None
) -> ChangeEvent:
    data: dict[str, Any] = {"schoolId": isams_id} if kind == "student" else {"id": isams_id}
    if record is not None:
        data["record"] = record
    return ChangeEvent.model_validate(
        {"type": f"{kind}.{action}", "timestamp": now.isoformat(), "data": data}
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
