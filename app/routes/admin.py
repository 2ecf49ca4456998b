"""The admin API (docs/design.md §2.5): bearer-token protected; answers 403 while no token is set.

Explain: why is this record (not) in ManageBac+? Read from the ledger, never from the
people systems, so support can ask it as often as they like.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict

from app.deps import AdminContext, AdminDep
from app.problems import ProblemError, problem_responses
from consumers.adapters.kafka.dlq import DeadLetter, DeadLetterFilter
from consumers.capture.backfill import run_backfill
from consumers.ops.dlq import list_letters, replay_letters
from consumers.ops.explain import describe, school_block

# The kinds `explain` answers for: the three event kinds and the parent behind a person's
# contacts (keyed by person). The CLI accepts the same (consumers.ops.explain.EXPLAINABLE_KINDS).
RecordKind = Literal["student", "contact", "staff", "parent"]
# Every status a ledger row can have (consumers.domain.records.Status), and "not seen".
RecordStatus = Literal["synced", "archived", "skipped", "pending", "failed", "not_seen"]


class RecordExplanation(BaseModel):
    """Where one iSAMS record stands in ManageBac+, and why."""

    school: str
    kind: RecordKind
    isams_id: str
    status: RecordStatus
    managebac_id: int | None = None
    reason: str | None = None
    warnings: list[str] = []
    last_received_at: datetime | None = None
    last_applied_at: datetime | None = None
    school_blocked: str | None = None
    explanation: str


router = APIRouter(prefix="/v1/schools", tags=["admin"])
_ADMIN_ERRORS = {
    401: "Missing or wrong admin token",
    403: "Admin API disabled (SYNC_ADMIN_TOKEN unset)",
    404: "Unknown school",
    422: "Invalid parameters or body",
}


@router.get(
    "/{school_id}/records/{kind}/{isams_id}",
    operation_id="explainRecord",
    summary="Say why a record is or is not in ManageBac+",
    responses=problem_responses({**_ADMIN_ERRORS, 422: "Unknown record kind or invalid id"}),
)
async def explain_record(
    admin: AdminDep,
    school_id: Annotated[str, Path(max_length=64)],
    kind: RecordKind,
    isams_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> RecordExplanation:
    _known_school(admin, school_id)
    ledger = admin.services.ledger
    record = await ledger.get(school_id, kind, isams_id)
    blocked = await school_block(ledger, school_id)
    text = describe(record, kind, isams_id)
    if blocked is not None:
        text += f"\n  school blocked: {blocked}"
    if record is None:
        return RecordExplanation(
            school=school_id,
            kind=kind,
            isams_id=isams_id,
            status="not_seen",
            school_blocked=blocked,
            explanation=text,
        )
    return RecordExplanation(
        school=school_id,
        kind=kind,
        isams_id=isams_id,
        status=record.status.value,
        managebac_id=record.managebac_id,
        reason=record.reason,
        warnings=list(record.warnings),
        last_received_at=record.last_received_at,
        last_applied_at=record.last_applied_at,
        school_blocked=blocked,
        explanation=text,
    )


class DeadLetterView(BaseModel):
    """A parked change: ids and the reason, never the record's contents."""

    position: str
    key: str
    type: str | None
    error_class: str
    error_detail: str
    attempts: int
    failed_at: datetime | None

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterView:
        return cls(
            position=letter.position,
            key=letter.key,
            type=letter.type,
            error_class=letter.error_class,
            error_detail=letter.error_detail,
            attempts=letter.attempts,
            failed_at=letter.failed_at,
        )


class DeadLetters(BaseModel):
    """The school's parked changes that were not replayed yet."""

    dead_letters: list[DeadLetterView]


class ReplayRequest(BaseModel):
    """Which parked changes to replay; an empty body replays all of the school's."""

    model_config = ConfigDict(extra="forbid")

    record: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class ReplayAnswer(BaseModel):
    """How many parked changes went back to isams.changes."""

    replayed: int
    dead_letters: list[DeadLetterView]


def _known_school(admin: AdminContext, school_id: str) -> None:
    if not admin.knows(school_id):
        raise ProblemError(404, "unknown-school", "Unknown school", "No such school is configured.")


@router.get(
    "/{school_id}/dlq",
    operation_id="listDeadLetters",
    summary="List a school's parked changes",
    responses=problem_responses(_ADMIN_ERRORS),
)
async def list_dlq(admin: AdminDep, school_id: Annotated[str, Path(max_length=64)]) -> DeadLetters:
    _known_school(admin, school_id)
    services = admin.services
    letters = await list_letters(
        services.kafka, services.topics, DeadLetterFilter(school=school_id)
    )
    return DeadLetters(dead_letters=[DeadLetterView.of(letter) for letter in letters])


@router.post(
    "/{school_id}/dlq/replay",
    operation_id="replayDeadLetters",
    summary="Send a school's parked changes back to be applied (each once)",
    responses=problem_responses({**_ADMIN_ERRORS, 400: "Body is not valid JSON"}),
)
async def replay_dlq(
    admin: AdminDep,
    school_id: Annotated[str, Path(max_length=64)],
    request: ReplayRequest | None = None,
) -> ReplayAnswer:
    _known_school(admin, school_id)
    wanted = request or ReplayRequest()
    letters, replayed = await replay_letters(
        admin.services.kafka,
        admin.services.topics,
        DeadLetterFilter(
            school=school_id, key=wanted.record, since=wanted.since, until=wanted.until
        ),
    )
    return ReplayAnswer(
        replayed=replayed, dead_letters=[DeadLetterView.of(letter) for letter in letters]
    )


class BackfillRequest(BaseModel):
    """How to run the backfill."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = False
    force: bool = False


class BackfillAnswer(BaseModel):
    """What the backfill found and did; `allowed` false means the guard stopped it."""

    run_id: str
    students: int
    staff: int
    removals: int
    would_archive: int
    synced: int
    allowed: bool
    queued: int
    dry_run: bool
    summary: str


@router.post(
    "/{school_id}/backfill",
    operation_id="startBackfill",
    summary="Queue every iSAMS record of the school for sync (guarded against mass archiving)",
    responses=problem_responses({**_ADMIN_ERRORS, 400: "Body is not valid JSON"}),
)
async def start_backfill(
    admin: AdminDep,
    school_id: Annotated[str, Path(max_length=64)],
    request: BackfillRequest | None = None,
) -> BackfillAnswer:
    _known_school(admin, school_id)
    wanted = request or BackfillRequest()
    services = admin.services
    ports = services.ports_of(school_id)
    assert ports is not None  # _known_school checked it
    report = await run_backfill(
        ports,
        services.ledger,
        services.publisher,
        services.topics,
        dry_run=wanted.dry_run,
        force=wanted.force,
    )
    return BackfillAnswer(
        run_id=report.run_id,
        students=report.students,
        staff=report.staff,
        removals=report.removals,
        would_archive=report.would_archive,
        synced=report.synced,
        allowed=report.decision.allowed,
        queued=report.queued,
        dry_run=report.dry_run,
        summary=report.summary(),
    )
