"""The ports: what the sync needs from iSAMS, ManageBac+, the ledger and Kafka, as Protocols.

The sync layer (`consumers.sync`, `consumers.capture`, `consumers.ops`) is written against
these and nothing else, so its logic runs on the hand-written fakes in `tests/fakes.py` as
well as on the real adapters (`consumers.adapters`). Each port's vocabulary lives here too:
the values it returns and the errors its adapters raise, translated at the boundary from
the libraries' own (httpx, aiokafka, SQLAlchemy never leak past an adapter).
See docs/architecture.md ("Ports and adapters").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from consumers.domain.changes import PolledHash
from consumers.domain.records import SyncRecord

__all__ = ["PolledHash"]  # re-exported: the ledger port's value for a polled record

Resource = Literal["students", "parents", "teachers"]
Record = dict[str, Any]


# --- iSAMS ------------------------------------------------------------------------------------


class IsamsError(Exception):
    """Base class of iSAMS failures."""


class IsamsUnavailableError(IsamsError):
    """iSAMS kept failing (5xx, timeouts, connection errors) after bounded retries."""


class IsamsAuthError(IsamsError):
    """iSAMS refused our client credentials; a setting needs fixing, retrying won't help."""


class IsamsThrottledError(IsamsUnavailableError):
    """iSAMS throttles this API key for longer than one request may wait (`retry_after` s)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IsamsRefusedError(IsamsError):
    """iSAMS answered a request with a refusal that retrying will not change; carries
    iSAMS's own `message` (what an operator needs to fix it) and the path asked for."""

    status: int = 0

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"iSAMS answered {self.status} to GET {path}: {message}")
        self.path = path
        self.message = message


class IsamsForbiddenError(IsamsRefusedError):
    """iSAMS answered 403: the REST client lacks the module's permission (never "empty")."""

    status = 403


class IsamsListNotFoundError(IsamsRefusedError):
    """iSAMS answered 404 to a list: an error (a wrong URL or module), never "the end" or
    "everyone left"."""

    status = 404


class IsamsPort(Protocol):
    """Read one school's records from the iSAMS REST API (raw records, as iSAMS sends them)."""

    async def student(self, school_id: str) -> Record | None:
        """Return a student's record (a leaver's from the alumni), or None when iSAMS has
        neither."""
        ...

    async def student_contacts(self, school_id: str) -> list[Record] | None:
        """Return a student's contacts, or None when iSAMS no longer has the student."""
        ...

    async def employee(self, employee_id: str) -> Record | None:
        """Return a staff record, or None when iSAMS no longer has it."""
        ...

    def all_students(self) -> AsyncIterator[Record]:
        """Yield every current student, page by page."""
        ...

    def all_alumni(self) -> AsyncIterator[Record]:
        """Yield every former pupil (a leaver, with `leavingDate`), page by page."""
        ...

    def all_employees(self) -> AsyncIterator[Record]:
        """Yield every member of staff, page by page."""
        ...

    def all_contacts(self) -> AsyncIterator[Record]:
        """Yield every current pupil's contacts (deceased ones too, with their country's ISO
        mapping), page by page; each names its student in `schoolId`."""
        ...

    @property
    def requests_sent(self) -> int:
        """Count the HTTP requests sent so far (retries and token requests included)."""
        ...


# --- ManageBac+ -------------------------------------------------------------------------------


class ManagebacError(Exception):
    """Base class of ManageBac+ failures."""


class ManagebacRejectedError(ManagebacError):
    """ManageBac+ refused the request for good (a 4xx other than 429); retrying won't help."""

    def __init__(self, status: int, body: str, method: str, path: str) -> None:
        super().__init__(f"ManageBac+ answered {status} to {method} {path}: {body[:500]}")
        self.status = status
        self.body = body

    @property
    def already_taken(self) -> bool:
        """Tell whether the refusal is a uniqueness clash ("has already been taken")."""
        return self.status == 422 and "already been taken" in self.body


class ManagebacUnavailableError(ManagebacError):
    """ManageBac+ kept failing (5xx, timeouts, connection errors, odd answers such as an HTML
    maintenance page or a redirect) after bounded retries."""


class ManagebacBlockedError(ManagebacError):
    """ManageBac+ refused the school's token (401) or a right it needs (403): every change
    of the school that needs it waits until the token works again; none is dead-lettered."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class RemoteUser:
    """A ManageBac+ user as far as the sync cares: its id, archive flag and fields."""

    id: int
    archived: bool
    fields: Mapping[str, Any]


class ManagebacPort(Protocol):
    """Write one school's users and parent-child links to ManageBac+."""

    async def create(self, resource: Resource, fields: Mapping[str, Any]) -> RemoteUser:
        """Create a user and return it as ManageBac+ stored it."""
        ...

    async def update(self, resource: Resource, user_id: int, fields: Mapping[str, Any]) -> None:
        """Write only the given fields (ManageBac+ ignores nulls; "" clears)."""
        ...

    async def archive(
        self, resource: Resource, user_id: int, body: Mapping[str, Any] | None = None
    ) -> None:
        """Archive a user (the API has no delete); students need a withdrawn_on date."""
        ...

    async def unarchive(self, resource: Resource, user_id: int) -> None:
        """Restore an archived user."""
        ...

    async def link_child(
        self, parent_id: int, child_id: int, relationship: str, *, likely_new: bool = False
    ) -> None:
        """Link a parent to a student, or write the relationship of an existing link.

        `likely_new`: nothing suggests the link exists, so post it first (one request).
        """
        ...

    async def relink_child(self, parent_id: int, child_id: int, relationship: str) -> None:
        """Change the relationship of an existing parent-child link."""
        ...

    async def unlink_child(self, parent_id: int, child_id: int) -> None:
        """Remove a parent-child link; a link that is already gone counts as removed."""
        ...

    async def find_student(self, student_id: str) -> RemoteUser | None:
        """Find a student by the school's own student_id (exact match, archived too)."""
        ...

    async def find_by_email(self, resource: Resource, email: str) -> RemoteUser | None:
        """Find a parent or teacher by exact e-mail, ignoring case."""
        ...

    async def permissions(self) -> frozenset[str]:
        """Return the rights of the school's token (`GET /v2/auth/permissions`)."""
        ...

    def users(self, resource: Resource) -> AsyncIterator[RemoteUser]:
        """Yield every user of `resource`, archived ones too, page by page."""
        ...

    async def children(self, parent_id: int) -> dict[int, str | None]:
        """Return a parent's links: child (student) id to relationship."""
        ...

    async def year_groups(self, modified_since: datetime | None = None) -> list[Record]:
        """Return the year groups (cohorts), active and archived, changed since a time."""
        ...


# --- The ledger -------------------------------------------------------------------------------


class LedgerPort(Protocol):
    """Where each record stands: what was pushed, and why (`SyncRecord` rows)."""

    async def create_schema(self) -> None:
        """Bring the storage to the newest schema (idempotent)."""
        ...

    async def ping(self) -> bool:
        """Tell whether the storage answers (readiness)."""
        ...

    async def get(self, school: str, kind: str, isams_id: str) -> SyncRecord | None:
        """Return the record's row, or None when it was never seen."""
        ...

    async def put(self, record: SyncRecord) -> None:
        """Insert or replace the record's row."""
        ...

    async def records(self, school: str, kind: str | None = None) -> list[SyncRecord]:
        """Return every record of a school (optionally of one kind)."""
        ...

    async def related(self, school: str, kind: str, related_id: str) -> list[SyncRecord]:
        """Return the records of `kind` that point at `related_id` (a student's contacts)."""
        ...

    async def of_person(self, school: str, kind: str, person_key: str) -> list[SyncRecord]:
        """Return the records of `kind` that belong to one person (their contact rows)."""
        ...

    async def status_counts(self, school: str) -> Counter[str]:
        """Count a school's records by kind and status, e.g. `student/synced`."""
        ...

    async def poll_hashes(self, school: str, kind: str) -> dict[str, PolledHash]:
        """Return what the poller last published of each record of one kind, by iSAMS id."""
        ...

    async def store_poll_hashes(
        self, school: str, kind: str, hashes: Mapping[str, PolledHash | None]
    ) -> None:
        """Write the given records' hashes (None: forget the record) in one transaction."""
        ...

    async def close(self) -> None:
        """Release what the ledger holds open."""
        ...


# --- Kafka ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One Kafka record to publish: key, value and headers, already encoded."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class PublishError(Exception):
    """Raised when Kafka did not acknowledge every message of a publish call."""


class MessageTooLargeError(PublishError):
    """Raised when one message is larger than Kafka accepts; retrying will not help."""


class PublisherPort(Protocol):
    """Durably hand messages to Kafka."""

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        """Return once Kafka acknowledged every message; else raise PublishError."""
        ...

    async def ping(self) -> bool:
        """Return whether Kafka answers now (readiness)."""
        ...
