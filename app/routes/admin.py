"""The admin API (DESIGN §2.5): bearer-token protected; answers 403 while no token is set.

Explain: why is this record (not) in ManageBac+? Read from the ledger, never from the
people systems, so support can ask it as often as they like.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, SecretStr

from app.kafka_connection import Kafka
from app.problems import ProblemError, problem_responses
from app.settings import Topics
from consumers.adapters.dlq import (
    DeadLetter,
    DeadLetterFilter,
    list_dead_letters,
    replay_dead_letters,
)
from consumers.adapters.ledger import Ledger
from consumers.backfill import BackfillReport
from consumers.explain import describe

# The kinds `explain` answers for: the three event kinds and the parent behind a person's
# contacts (keyed by person). The CLI accepts the same (consumers.explain.EXPLAINABLE_KINDS).
RecordKind = Literal["student", "contact", "staff", "parent"]
# Every status a ledger row can have (consumers.domain.records.Status), and "not seen".
RecordStatus = Literal["synced", "archived", "skipped", "pending", "failed", "not_seen"]


@dataclass(frozen=True)
class AdminContext:
    """What the admin routes need, built once by `create_app`."""

    token: SecretStr | None
    schools: frozenset[str]
    ledger: Ledger
    kafka: Kafka
    topics: Topics
    backfill: Callable[[str, bool, bool], Awaitable[BackfillReport]]


def _context(request: Request) -> AdminContext:
    context = request.app.state.admin
    assert isinstance(context, AdminContext)
    return context


def require_admin(request: Request) -> AdminContext:
    """Let the request through only with `Authorization: Bearer $SYNC_ADMIN_TOKEN`."""
    context = _context(request)
    if context.token is None:
        raise ProblemError(
            403,
            "admin-disabled",
            "Admin API disabled",
            "The admin API is off until SYNC_ADMIN_TOKEN is set.",
        )
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    expected = context.token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), expected):
        raise ProblemError(
            401,
            "admin-unauthorized",
            "Admin token required",
            "Send Authorization: Bearer <SYNC_ADMIN_TOKEN>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return context


AdminDep = Annotated[AdminContext, Depends(require_admin)]


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
    record = await admin.ledger.get(school_id, kind, isams_id)
    text = describe(record, kind, isams_id)
    if record is None:
        return RecordExplanation(
            school=school_id, kind=kind, isams_id=isams_id, status="not_seen", explanation=text
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
    if school_id not in admin.schools:
        raise ProblemError(404, "unknown-school", "Unknown school", "No such school is configured.")


@router.get(
    "/{school_id}/dlq",
    operation_id="listDeadLetters",
    summary="List a school's parked changes",
    responses=problem_responses(_ADMIN_ERRORS),
)
async def list_dlq(admin: AdminDep, school_id: Annotated[str, Path(max_length=64)]) -> DeadLetters:
    _known_school(admin, school_id)
    letters = await list_dead_letters(admin.kafka, admin.topics, DeadLetterFilter(school=school_id))
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
    letters = await list_dead_letters(
        admin.kafka,
        admin.topics,
        DeadLetterFilter(
            school=school_id, key=wanted.record, since=wanted.since, until=wanted.until
        ),
    )
    replayed = await replay_dead_letters(admin.kafka, admin.topics, letters)
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
    report = await admin.backfill(school_id, wanted.dry_run, wanted.force)
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
