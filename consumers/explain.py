"""Say, in plain words, why a record is or is not in ManageBac+ (from the ledger)."""

from __future__ import annotations

from app.settings import Settings
from consumers.adapters.ledger import Ledger
from consumers.domain.records import Status, SyncRecord


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


async def explain_record(settings: Settings, school: str, kind: str, isams_id: str) -> str:
    """Look the record up in the ledger and describe it."""
    ledger = Ledger.from_url(settings.database_url)
    try:
        await ledger.create_schema()
        return describe(await ledger.get(school, kind, isams_id), kind, isams_id)
    finally:
        await ledger.close()
