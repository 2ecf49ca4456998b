"""Small hand-written fakes of what a poll cycle talks to, recording what was done.

Only the poll's needs: iSAMS's four lists and its single reads (with refusals on demand),
the ledger's hashes and rows, a publisher that keeps what Kafka acknowledged. (The shared
fakes of every port are `tests/fakes.py`; these stay small and next to their tests.)
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from consumers.domain.changes import PolledHash
from consumers.domain.records import SyncRecord
from consumers.events import QueuedChange
from consumers.ports import IsamsError, OutgoingMessage, PublishError

Record = dict[str, Any]
PAGE = 2  # records per page, so a few records make several pages


class PollIsams:
    """iSAMS as the poller sees it: current pupils, alumni, contacts, employees."""

    def __init__(self) -> None:
        self.students: dict[str, Record] = {}
        self.alumni: dict[str, Record] = {}
        self.contacts: dict[int, Record] = {}
        self.employees: dict[int, Record] = {}
        self.refusals: dict[str, IsamsError] = {}  # list name -> what iSAMS answers
        self.requests = 0
        self.pages_read: list[str] = []

    # --- the port -----------------------------------------------------------------------

    @property
    def requests_sent(self) -> int:
        return self.requests

    def all_students(self) -> AsyncIterator[Record]:
        return self._pages("students", self.students.values())

    def all_alumni(self) -> AsyncIterator[Record]:
        return self._pages("alumni", self.alumni.values())

    def all_contacts(self) -> AsyncIterator[Record]:
        return self._pages("contacts", self.contacts.values())

    def all_employees(self) -> AsyncIterator[Record]:
        return self._pages("employees", self.employees.values())

    async def student(self, school_id: str) -> Record | None:
        self.requests += 1
        found = self.students.get(school_id) or self.alumni.get(school_id)
        return copy.deepcopy(found)

    async def student_contacts(self, school_id: str) -> list[Record] | None:
        self.requests += 1
        if school_id not in self.students:
            return None
        return [copy.deepcopy(c) for c in self.contacts.values() if c["schoolId"] == school_id]

    async def employee(self, employee_id: str) -> Record | None:
        self.requests += 1
        return copy.deepcopy(self.employees.get(int(employee_id)))

    async def _pages(self, name: str, records: Any) -> AsyncIterator[Record]:
        snapshot = [copy.deepcopy(r) for r in records]
        for start in range(0, max(len(snapshot), 1), PAGE):
            self.requests += 1
            self.pages_read.append(name)
            if name in self.refusals:
                raise self.refusals[name]
            for record in snapshot[start : start + PAGE]:
                yield record

    # --- the school changing -------------------------------------------------------------

    def add_student(self, school_id: str, **fields: Any) -> Record:
        record = {"schoolId": school_id, "forename": "a", "systemStatus": "Current", **fields}
        self.students[school_id] = record
        return record

    def leave(self, school_id: str, on: str = "2026-07-10T00:00:00") -> Record:
        record = self.students.pop(school_id)
        self.alumni[school_id] = {**record, "systemStatus": "Leaver", "leavingDate": on}
        return self.alumni[school_id]

    def add_contact(self, contact_id: int, school_id: str, **fields: Any) -> Record:
        record = {"id": contact_id, "schoolId": school_id, "contactType": "Parents", **fields}
        self.contacts[contact_id] = record
        return record

    def add_employee(self, employee_id: int, **fields: Any) -> Record:
        record = {"id": employee_id, "surname": "s", "systemStatus": "Current", **fields}
        self.employees[employee_id] = record
        return record


class PollLedger:
    """The ledger's poll hashes and rows, in dicts."""

    def __init__(self) -> None:
        self.hashes: dict[tuple[str, str], dict[str, PolledHash]] = {}
        self.rows: dict[tuple[str, str, str], SyncRecord] = {}
        self.hash_writes = 0

    async def poll_hashes(self, school: str, kind: str) -> dict[str, PolledHash]:
        return dict(self.hashes.get((school, kind), {}))

    async def store_poll_hashes(
        self, school: str, kind: str, hashes: Mapping[str, PolledHash | None]
    ) -> None:
        self.hash_writes += 1
        stored = self.hashes.setdefault((school, kind), {})
        for isams_id, polled in hashes.items():
            if polled is None:
                stored.pop(isams_id, None)
            else:
                stored[isams_id] = polled

    async def records(self, school: str, kind: str | None = None) -> list[SyncRecord]:
        return [r for r in self.rows.values() if r.school == school and kind in (None, r.kind)]

    async def put(self, record: SyncRecord) -> None:
        self.rows[(record.school, record.kind, record.isams_id)] = record

    def row(self, school: str, kind: str, isams_id: str) -> SyncRecord:
        return self.rows[(school, kind, isams_id)]


class PollPublisher:
    """Keeps every message Kafka 'acknowledged'; fails on demand, as a broker down does."""

    def __init__(self) -> None:
        self.messages: list[OutgoingMessage] = []
        self.failing = False

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        if self.failing:
            raise PublishError("Kafka did not acknowledge (fake)")
        self.messages.extend(messages)

    async def ping(self) -> bool:
        return not self.failing

    def changes(self) -> list[QueuedChange]:
        return [QueuedChange.from_bytes(m.value) for m in self.messages]

    def take(self) -> list[QueuedChange]:
        """Return the changes published since the last take."""
        taken = self.changes()
        self.messages.clear()
        return taken
