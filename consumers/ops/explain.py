"""Say, in plain words, why a record is or is not in ManageBac+ (from the ledger)."""

from __future__ import annotations

from consumers.blocks import MANAGEBAC
from consumers.domain.records import SCHOOL_KIND, Status, SyncRecord
from consumers.domain.removals import POLL_LISTS
from consumers.ports import LedgerPort
from consumers.settings import SchoolsFile, UnknownSchoolError
from consumers.year_groups import YEAR_GROUPS

# What `explain` answers for: the event kinds, and `parent` (one per person, keyed by the
# contact's personGuid, else personId). The admin API's RecordKind lists the same.
EXPLAINABLE_KINDS = ("student", "contact", "staff", "parent")
# The CLI also explains how the poller stands with each of a school's iSAMS lists
# (`explain --school ID poll contacts`): read, blocked (iSAMS's words) or removals held.
POLL_KIND = "poll"
CLI_KINDS = (*EXPLAINABLE_KINDS, POLL_KIND)
_POLL_STATES = {
    Status.SYNCED: "read whole",
    Status.FAILED: "blocked",
    Status.PENDING: "removals held",
}


class ExplainRequestError(ValueError):
    """An explain request names a school or kind that does not exist; says which."""


def describe(record: SyncRecord | None, kind: str, isams_id: str) -> str:
    """Render one ledger row for a support desk; no personal data beyond ids."""
    if record is None:
        return (
            f"{kind} {isams_id}: never seen. No change for this record has reached the sync "
            "yet; run a backfill or edit the record in iSAMS."
        )
    lines = [f"{kind} {isams_id}: {record.status.value}"]
    if record.status is Status.SYNCED:
        lines.append(f"  in ManageBac+ as id {record.managebac_id}")
    elif record.status is Status.ARCHIVED:
        lines.append(f"  archived in ManageBac+ (id {record.managebac_id})")
    elif record.managebac_id is not None:
        lines.append(f"  linked to ManageBac+ id {record.managebac_id}")
    if record.reason:
        lines.append(f"  why: {record.reason}")
    lines.extend(f"  warning: {warning}" for warning in record.warnings)
    if record.last_applied_at is not None:
        lines.append(f"  last written: {record.last_applied_at.isoformat()}")
    if record.last_received_at is not None:
        lines.append(f"  last change received: {record.last_received_at.isoformat()}")
    return "\n".join(lines)


def describe_poll(record: SyncRecord | None, school: str, name: str) -> str:
    """Render the poller's state of one of a school's iSAMS lists (a `poll` row)."""
    if record is None:
        return (
            f"poll {name}: never polled. No poll cycle of {school} has read its lists yet; "
            "set isams.poll_interval_s in the schools file, or run isams-sync poll --once."
        )
    lines = [f"poll {name}: {_POLL_STATES.get(record.status, record.status.value)}"]
    if record.reason:
        lines.append(f"  why: {record.reason}")
    if record.last_applied_at is not None:
        lines.append(f"  last cycle: {record.last_applied_at.isoformat()}")
    return "\n".join(lines)


def check_explain_request(
    schools: SchoolsFile, school: str, kind: str, isams_id: str | None = None
) -> None:
    """Refuse an unknown school, kind or (for `poll`) list, naming it and what there is."""
    try:
        schools.school(school)
    except UnknownSchoolError as exc:
        raise ExplainRequestError(str(exc)) from None
    if kind not in CLI_KINDS:
        raise ExplainRequestError(f"unknown kind {kind!r}: use one of {', '.join(CLI_KINDS)}")
    if kind == POLL_KIND and isams_id is not None and isams_id not in POLL_LISTS:
        raise ExplainRequestError(
            f"unknown list {isams_id!r}: poll explains one of {', '.join(POLL_LISTS)}"
        )


async def school_block(ledger: LedgerPort, school: str) -> str | None:
    """Return why the school's changes wait now (its ManageBac+ token), or None."""
    return await _school_problem(ledger, school, MANAGEBAC)


async def year_group_problems(ledger: LedgerPort, school: str) -> str | None:
    """Return which mapped grades have no single active ManageBac+ year group, or None."""
    return await _school_problem(ledger, school, YEAR_GROUPS)


async def _school_problem(ledger: LedgerPort, school: str, about: str) -> str | None:
    """Return the reason of the school's own ledger row `about` while it says failed."""
    row = await ledger.get(school, SCHOOL_KIND, about)
    return row.reason if row is not None and row.status is Status.FAILED else None


async def explain_record(ledger: LedgerPort, school: str, kind: str, isams_id: str) -> str:
    """Look the record (or, for `poll`, the list's state) up in the ledger and describe it,
    with the school's block if any (and, for a student, the school's grades that resolve
    to no year group now)."""
    await ledger.create_schema()
    found = await ledger.get(school, kind, isams_id)
    text = (
        describe_poll(found, school, isams_id)
        if kind == POLL_KIND
        else describe(found, kind, isams_id)
    )
    blocked = await school_block(ledger, school)
    if blocked is not None:
        text = f"{text}\n  school blocked: {blocked}"
    grades = await year_group_problems(ledger, school) if kind == "student" else None
    return text if grades is None else f"{text}\n  school year groups: {grades}"
