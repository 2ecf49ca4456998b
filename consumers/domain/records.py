"""What the ledger remembers of each iSAMS record: the link, what was pushed, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Where a record stands in ManageBac+, in words support staff use."""

    SYNCED = "synced"
    ARCHIVED = "archived"
    SKIPPED = "skipped"
    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True)
class SyncRecord:
    """The ledger's row for one iSAMS record of one school.

    `kind` is `student`, `contact` or `staff` (as in events), or `parent` for the one
    ManageBac+ parent behind a person's contact records. `related_id` is a contact's
    student (schoolId); `person_key` is a contact's person (personGuid, else personId).
    `pushed` is what ManageBac+ holds from us; `source` is what the plans need to remember
    of iSAMS between changes (a contact's record and link, a teacher's access).
    """

    school: str
    kind: str
    isams_id: str
    status: Status
    managebac_id: int | None = None
    related_id: str | None = None
    person_key: str | None = None
    pushed: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    content_hash: str | None = None
    archived: bool = False
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    source_updated_at: str | None = None
    last_received_at: datetime | None = None
    last_applied_at: datetime | None = None
    latency_ms: float | None = None
