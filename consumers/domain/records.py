"""What the ledger remembers of each iSAMS record: the link, what was pushed, and why."""

from __future__ import annotations

from collections.abc import Mapping
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


@dataclass(frozen=True, slots=True)
class LinkState:
    """What ManageBac+ holds from us for one contact's parent-child link."""

    relationship: str
    linked: bool


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the plans remember of iSAMS between changes, per record.

    `record`: a contact's last iSAMS record (a parent is planned from its person's records);
    `link`: a contact's parent-child link as written; `access`: a teacher's last known
    ManageBac+ access (staff events carry it, polled records do not); `made_here`: a
    parent's ManageBac+ account was created by this service, so every link it has was made
    through the ledger (an adopted parent may have links of its own). Stored as one JSON
    object (`to_json`/`from_json`), whose shape older rows already have.
    """

    record: Mapping[str, Any] | None = None
    link: LinkState | None = None
    access: bool | None = None
    made_here: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object the ledger stores (only the keys that are set)."""
        document: dict[str, Any] = {}
        if self.record is not None:
            document["record"] = dict(self.record)
        if self.link is not None:
            document["link"] = {"relationship": self.link.relationship, "linked": self.link.linked}
        if self.access is not None:
            document["access"] = self.access
        if self.made_here:
            document["made_here"] = True
        return document

    @classmethod
    def from_json(cls, document: object) -> SourceState:
        """Read what the ledger stored; a value of the wrong shape counts as unknown."""
        if not isinstance(document, Mapping):
            return cls()
        record = document.get("record")
        link = document.get("link")
        access = document.get("access")
        return cls(
            record=record if isinstance(record, Mapping) and record else None,
            link=LinkState(str(link.get("relationship", "")), bool(link.get("linked")))
            if isinstance(link, Mapping)
            else None,
            access=access if isinstance(access, bool) else None,
            made_here=document.get("made_here") is True,
        )


SCHOOL_KIND = "school"  # the kind of a ledger row about a school itself (a block, year groups)


@dataclass(frozen=True)
class SyncRecord:
    """The ledger's row for one iSAMS record of one school.

    `kind` is `student`, `contact` or `staff` (as in events), or `parent` for the one
    ManageBac+ parent behind a person's contact records. `related_id` is a contact's
    student (schoolId); `person_key` is a contact's person (personGuid, else personId).
    `pushed` is what ManageBac+ holds from us; `source` is what the plans need to remember
    of iSAMS between changes (`SourceState`).
    """

    school: str
    kind: str
    isams_id: str
    status: Status
    managebac_id: int | None = None
    related_id: str | None = None
    person_key: str | None = None
    pushed: dict[str, Any] = field(default_factory=dict)
    source: SourceState = field(default_factory=SourceState)
    content_hash: str | None = None
    archived: bool = False
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    source_updated_at: str | None = None
    last_received_at: datetime | None = None
    last_applied_at: datetime | None = None
    latency_ms: float | None = None

    @property
    def active_in_managebac(self) -> bool:
        """Tell whether ManageBac+ holds this record's user, not archived: what a removal
        would archive, so what the removals guard counts (poll, backfill and reconcile)."""
        return self.managebac_id is not None and not self.archived
