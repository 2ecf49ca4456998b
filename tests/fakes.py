"""Hand-written fakes of the ports (consumers/ports.py): plain dicts that record what was done.

Each fake keeps its port's contract as the real adapter and the real system keep it, and
knows nothing of the sync: the iSAMS fake answers like the REST API (a leaver from the
alumni, no contact list for a pupil who is not current), the ManageBac+ fake refuses what
ManageBac+ refuses (a second user with one e-mail, case ignored; a second student with one
student_id; an unknown id; a student archived without a date), and the ledger fake hands
back what a database hands back (JSON copies, instants in UTC). Every port call yields to
the event loop once, as real I/O does, so concurrent changes interleave as they would.

Tests assert on the fakes' state (users, links, rows, messages, the write log), not on
which calls were made; `FakeSync` and `fake_services` build the same object graph as the
composition root (consumers/bootstrap.py), from fakes. See docs/architecture.md ("Ports
and fakes").
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from consumers.bootstrap import Services
from consumers.domain.changes import PolledHash
from consumers.domain.records import SourceState, SyncRecord
from consumers.events import EVENT_TYPES, EventType, QueuedChange
from consumers.outcomes import Result
from consumers.ports import (
    IsamsError,
    ManagebacError,
    ManagebacRejectedError,
    OutgoingMessage,
    PublishError,
    Record,
    RemoteUser,
    Resource,
)
from consumers.settings import School, SchoolsFile, Settings
from consumers.sync.context import SchoolPorts, SyncContext
from consumers.sync.service import SyncService

SCHOOL_ID = "unit-school"
SECRET = "whsec_" + base64.b64encode(b"the-unit-test-school-secret-32b!").decode()
YEAR_GROUPS: dict[int, int] = {7: 1007, 8: 1008, 9: 1009}


async def _io() -> None:
    """Give the event loop a turn, as every real port call does while it waits on I/O."""
    await asyncio.sleep(0)


def _json_copy(value: Any) -> Any:
    """Return what a JSON round trip gives back (a deep copy; non-JSON values raise)."""
    return orjson.loads(orjson.dumps(value))


# --- the ledger -------------------------------------------------------------------------------


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _as_stored(record: SyncRecord) -> SyncRecord:
    """Return the row as a database hands it back: JSON columns copied, instants in UTC."""
    return replace(
        record,
        pushed=_json_copy(record.pushed),
        source=SourceState.from_json(_json_copy(record.source.to_json())),
        warnings=tuple(_json_copy(list(record.warnings))),
        last_received_at=_utc(record.last_received_at),
        last_applied_at=_utc(record.last_applied_at),
    )


class FakeLedger:
    """The ledger as a dict of `SyncRecord` rows keyed (school, kind, isams_id): all of
    `LedgerPort`. Rows come back in the order they were first written (SQL promises none)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], SyncRecord] = {}
        self.hashes: dict[tuple[str, str], dict[str, PolledHash]] = {}  # by (school, kind)
        self.schema_created = False
        self.available = True  # what `ping` answers
        self.closed = False

    async def create_schema(self) -> None:
        await _io()
        self.schema_created = True

    async def ping(self) -> bool:
        await _io()
        return self.available

    async def get(self, school: str, kind: str, isams_id: str) -> SyncRecord | None:
        await _io()
        row = self.rows.get((school, kind, isams_id))
        return _as_stored(row) if row is not None else None

    async def put(self, record: SyncRecord) -> None:
        await _io()
        self.rows[(record.school, record.kind, record.isams_id)] = _as_stored(record)

    async def records(self, school: str, kind: str | None = None) -> list[SyncRecord]:
        return await self._where(school, kind)

    async def related(self, school: str, kind: str, related_id: str) -> list[SyncRecord]:
        return [r for r in await self._where(school, kind) if r.related_id == related_id]

    async def of_person(self, school: str, kind: str, person_key: str) -> list[SyncRecord]:
        return [r for r in await self._where(school, kind) if r.person_key == person_key]

    async def status_counts(self, school: str) -> Counter[str]:
        return Counter(f"{r.kind}/{r.status.value}" for r in await self._where(school, None))

    async def poll_hashes(self, school: str, kind: str) -> dict[str, PolledHash]:
        await _io()
        return dict(self.hashes.get((school, kind), {}))

    async def store_poll_hashes(
        self, school: str, kind: str, hashes: Mapping[str, PolledHash | None]
    ) -> None:
        await _io()
        stored = self.hashes.setdefault((school, kind), {})
        for isams_id, polled in hashes.items():
            if polled is None:
                stored.pop(isams_id, None)
            else:
                stored[isams_id] = polled

    async def close(self) -> None:
        self.closed = True

    async def _where(self, school: str, kind: str | None) -> list[SyncRecord]:
        await _io()
        return [
            _as_stored(row)
            for (row_school, row_kind, _), row in self.rows.items()
            if row_school == school and (kind is None or row_kind == kind)
        ]

    # For tests: read a row without going through the port.
    def row(self, kind: str, isams_id: str, school: str = SCHOOL_ID) -> SyncRecord:
        """Return one row; fail the test when there is none."""
        found = self.rows.get((school, kind, str(isams_id)))
        assert found is not None, f"no ledger row for {school}/{kind}/{isams_id}"
        return found


# --- iSAMS ------------------------------------------------------------------------------------


class FakeIsams:
    """One school's iSAMS as plain dicts of raw records (as the REST API sends them).

    `students` are the current pupils and `alumni` the leavers, both by `schoolId`;
    `contacts` are each pupil's contact records, by the pupil's `schoolId`; `employees` by
    id (as text). Like the REST API, `student()` finds a leaver in the alumni, and a pupil
    who is not current has no contact list (None). Every call is recorded in `calls`, as
    (method, argument), so a test can count iSAMS reads; `failing`, when set, is raised by
    every call instead (after it is recorded).
    """

    def __init__(self) -> None:
        self.students: dict[str, Record] = {}
        self.alumni: dict[str, Record] = {}
        self.contacts: dict[str, list[Record]] = {}
        self.employees: dict[str, Record] = {}
        self.calls: list[tuple[str, str]] = []
        self.failing: IsamsError | None = None

    # The port.

    async def student(self, school_id: str) -> Record | None:
        await self._call("student", school_id)
        found = self.students.get(school_id) or self.alumni.get(school_id)
        return _json_copy(found) if found is not None else None

    async def student_contacts(self, school_id: str) -> list[Record] | None:
        await self._call("student_contacts", school_id)
        if school_id not in self.students:
            return None  # iSAMS: "Failed to read student contacts - Student does not exist."
        listed: list[Record] = _json_copy(self.contacts.get(school_id, []))
        return listed

    async def employee(self, employee_id: str) -> Record | None:
        await self._call("employee", employee_id)
        found = self.employees.get(employee_id)
        return _json_copy(found) if found is not None else None

    async def all_students(self) -> AsyncIterator[Record]:
        await self._call("all_students", "")
        for record in list(self.students.values()):
            yield _json_copy(record)

    async def all_alumni(self) -> AsyncIterator[Record]:
        await self._call("all_alumni", "")
        for record in list(self.alumni.values()):
            yield _json_copy(record)

    async def all_employees(self) -> AsyncIterator[Record]:
        await self._call("all_employees", "")
        for record in list(self.employees.values()):
            yield _json_copy(record)

    async def all_contacts(self) -> AsyncIterator[Record]:
        """Every current pupil's contacts, each naming its student (the paged list)."""
        await self._call("all_contacts", "")
        for school_id, listed in list(self.contacts.items()):
            if school_id in self.students:
                for record in listed:
                    yield {**_json_copy(record), "schoolId": school_id}

    @property
    def requests_sent(self) -> int:
        """The reads made so far (each fake call is one request)."""
        return len(self.calls)

    async def _call(self, method: str, argument: str) -> None:
        self.calls.append((method, argument))
        await _io()
        if self.failing is not None:
            raise self.failing

    # What happens in iSAMS (for tests; not part of the port, and not recorded).

    def add_student(self, record: Record) -> Record:
        """Put a current pupil on roll (replacing any record of theirs)."""
        school_id = str(record["schoolId"])
        self.alumni.pop(school_id, None)
        self.students[school_id] = dict(record)
        return self.students[school_id]

    def update_student(self, school_id: str, **fields: Any) -> Record:
        """Change fields of a current pupil or a leaver."""
        table = self.students if school_id in self.students else self.alumni
        table[school_id] = {**table[school_id], **fields}
        return table[school_id]

    def leave(self, school_id: str, on: date, **fields: Any) -> Record:
        """Make a pupil a leaver: iSAMS moves them to the alumni, with their leavingDate."""
        record = {
            **self.students.pop(school_id),
            "systemStatus": "Leaver",
            "leavingDate": f"{on.isoformat()}T00:00:00",
            **fields,
        }
        self.alumni[school_id] = record
        return record

    def come_back(self, school_id: str, **fields: Any) -> Record:
        """Put a leaver back on roll (current again, no leavingDate)."""
        record = {**self.alumni.pop(school_id), "systemStatus": "Current", **fields}
        record.pop("leavingDate", None)
        self.students[school_id] = record
        return record

    def remove_student(self, school_id: str) -> None:
        """Make iSAMS forget a pupil altogether (neither current nor a leaver)."""
        self.students.pop(school_id, None)
        self.alumni.pop(school_id, None)

    def add_contact(self, record: Record) -> Record:
        """Add a contact record to its pupil's list (`schoolId`), replacing one with its id."""
        self.remove_contact(record["id"])
        self.contacts.setdefault(str(record["schoolId"]), []).append(dict(record))
        return record

    def update_contact(self, contact_id: object, **fields: Any) -> Record:
        """Change fields of a contact record."""
        for listed in self.contacts.values():
            for index, record in enumerate(listed):
                if str(record["id"]) == str(contact_id):
                    listed[index] = {**record, **fields}
                    return listed[index]
        raise KeyError(contact_id)

    def remove_contact(self, contact_id: object) -> None:
        """Take a contact record off its pupil's list."""
        for school_id, listed in self.contacts.items():
            self.contacts[school_id] = [r for r in listed if str(r["id"]) != str(contact_id)]

    def contact(self, contact_id: object) -> Record | None:
        """Return a contact record as iSAMS holds it now (not recorded as a read)."""
        for listed in self.contacts.values():
            for record in listed:
                if str(record["id"]) == str(contact_id):
                    return record
        return None

    def add_employee(self, record: Record) -> Record:
        """Add or replace a member of staff."""
        self.employees[str(record["id"])] = dict(record)
        return self.employees[str(record["id"])]

    def update_employee(self, employee_id: object, **fields: Any) -> Record:
        """Change fields of a member of staff."""
        key = str(employee_id)
        self.employees[key] = {**self.employees[key], **fields}
        return self.employees[key]

    def reads(self, method: str | None = None) -> int:
        """Count the calls made (of one method)."""
        return sum(1 for called, _ in self.calls if method is None or called == method)


# --- ManageBac+ -------------------------------------------------------------------------------

FIRST_ID = 10_000_001
TAKEN = "has already been taken"
ALL_RIGHTS = frozenset(
    f"{area}/{action}"
    for area in ("students", "parents", "teachers", "parents/children", "year_groups")
    for action in ("index", "show", "create", "update", "archive", "unarchive", "destroy")
)


@dataclass
class FakeUser:
    """A ManageBac+ user: its id, archive flag and the fields ManageBac+ holds."""

    id: int
    resource: Resource
    archived: bool = False
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteRequest:
    """One write ManageBac+ received: the port method, the resource, the user id it named
    (None for a create), its body, and whether ManageBac+ refused it."""

    method: str
    resource: Resource
    id: int | None
    body: Mapping[str, Any]
    refused: bool = False


def _refusal(errors: Mapping[str, list[str]], method: str, path: str) -> ManagebacRejectedError:
    body = orjson.dumps({"errors": errors}).decode()
    return ManagebacRejectedError(422, body, method, path)


def _not_found(what: str, user_id: int, method: str, path: str) -> ManagebacRejectedError:
    body = orjson.dumps({"error": f"Couldn't find {what} with 'id'={user_id}"}).decode()
    return ManagebacRejectedError(404, body, method, path)


_SINGULAR: dict[Resource, str] = {"students": "Student", "parents": "Parent", "teachers": "Teacher"}
_REQUIRED = ("email", "last_name")


class FakeManagebac:
    """One school's ManageBac+: users by resource, parent-child links, and a write log.

    Like ManageBac+ (and the simulator, sim/managebac/store.py): one user per e-mail over
    every kind of user, case ignored, and one student per student_id, a second refused with
    422 `{"errors": {"email": ["has already been taken"]}}` (or `student_id`); e-mail and
    last_name required
    on create and never blanked; nulls ignored and `""` clearing on update; archiving a
    student needs a `withdrawn_on` (or `graduated_on`) date and takes them out of their year
    group, unarchiving clears the date and leaves the year group empty; an unknown id is a
    404. Links as the real client makes them: linking an existing link writes the
    relationship; relinking a missing link is a 404; unlinking a missing link is no error.

    `requests` logs every write received (`writes` as (method, resource, id)), refused ones
    too; `lookups` logs the finds. `failing`, when set, is raised by every call instead
    (nothing is logged: ManageBac+ was not reached).

    Year groups are cohorts (`cohorts`, as `GET /v2/year-groups` lists them, with their
    `updated_at`): `add_cohort` adds one in a grade, `transition` runs the academic-year
    transition as ManageBac+ does; `listing`, when set, is what the list shows instead (a
    list that lags behind what writes are checked against). Once there are cohorts, a
    student written with an unknown `year_group_id` is refused (422 "must exist"), and with
    an archived one too ("is archived"), as ManageBac+ refuses them; without any, ids are
    not checked.
    """

    def __init__(self) -> None:
        self.accounts: dict[Resource, dict[int, FakeUser]] = {
            "students": {},
            "parents": {},
            "teachers": {},
        }
        self.links: dict[tuple[int, int], str] = {}  # (parent id, child id) -> relationship
        self.link_hints: list[bool] = []  # each link_child call's `likely_new`
        # The parent list carries each parent's links (`child_ids`, `children`), as ManageBac+'s
        # does; False lists parents without them (then only `children()` says).
        self.parents_listed_with_children = True
        self.requests: list[WriteRequest] = []
        self.lookups: list[tuple[str, Resource, str]] = []
        self.failing: ManagebacError | None = None
        self.rights: frozenset[str] = ALL_RIGHTS  # what the school's token may do
        self.cohorts: list[Record] = []  # year groups as ManageBac+ lists them (`updated_at`)
        self.program_grades: dict[str, list[int]] = {}  # grade numbers of each program
        self.listing: list[Record] | None = None  # when set, what the year-groups list shows
        self._next_id = FIRST_ID

    @property
    def writes(self) -> list[tuple[str, Resource, int | None]]:
        """Every write received, in order, as (method, resource, user id)."""
        return [(r.method, r.resource, r.id) for r in self.requests]

    # The port.

    async def create(self, resource: Resource, fields: Mapping[str, Any]) -> RemoteUser:
        await self._reach()
        body = _json_copy(dict(fields))
        values = {name: value for name, value in body.items() if value is not None}
        errors = self._invalid(resource, None, values, creating=True)
        self._log("create", resource, None, body, refused=bool(errors))
        if errors:
            raise _refusal(errors, "POST", f"/v2/{resource}")
        user = self.seed(resource, **values)
        return self._remote(user)

    async def update(self, resource: Resource, user_id: int, fields: Mapping[str, Any]) -> None:
        await self._reach()
        body = _json_copy(dict(fields))
        path = f"/v2/{resource}/{user_id}"
        user = self.accounts[resource].get(user_id)
        if user is None:
            self._log("update", resource, user_id, body, refused=True)
            raise _not_found(_SINGULAR[resource], user_id, "PATCH", path)
        values = {name: value for name, value in body.items() if value is not None}
        errors = self._invalid(resource, user_id, values, creating=False)
        self._log("update", resource, user_id, body, refused=bool(errors))
        if errors:
            raise _refusal(errors, "PATCH", path)
        for name, value in values.items():
            if value == "":
                user.fields.pop(name, None)
            else:
                user.fields[name] = value

    async def archive(
        self, resource: Resource, user_id: int, body: Mapping[str, Any] | None = None
    ) -> None:
        await self._reach()
        sent = _json_copy(dict(body or {}))
        path = f"/v2/{resource}/{user_id}/archive"
        user = self.accounts[resource].get(user_id)
        dates = {k: v for k, v in sent.items() if k in ("withdrawn_on", "graduated_on") and v}
        if user is None:
            self._log("archive", resource, user_id, sent, refused=True)
            raise _not_found(_SINGULAR[resource], user_id, "PUT", path)
        if resource == "students" and len(dates) != 1:
            self._log("archive", resource, user_id, sent, refused=True)
            message = "either withdrawn_on or graduated_on must be given"
            raise _refusal({"base": [message]}, "PUT", path)
        self._log("archive", resource, user_id, sent)
        user.archived = True
        if resource == "students":
            user.fields.pop("year_group_id", None)
            user.fields.update(dates)

    async def unarchive(self, resource: Resource, user_id: int) -> None:
        await self._reach()
        path = f"/v2/{resource}/{user_id}/unarchive"
        user = self.accounts[resource].get(user_id)
        self._log("unarchive", resource, user_id, {}, refused=user is None)
        if user is None:
            raise _not_found(_SINGULAR[resource], user_id, "PUT", path)
        user.archived = False
        if resource == "students":
            user.fields.pop("withdrawn_on", None)
            user.fields.pop("graduated_on", None)

    async def link_child(
        self, parent_id: int, child_id: int, relationship: str, *, likely_new: bool = False
    ) -> None:
        """Link, or write the relationship of an existing link (`likely_new` or not: the
        real client then makes one request or two, and ManageBac+ ends the same)."""
        self.link_hints.append(likely_new)
        await self._reach()
        body = {"child_id": child_id, "relationship": relationship}
        path = f"/v2/parents/{parent_id}/children"
        if parent_id not in self.accounts["parents"]:
            self._log("link_child", "parents", parent_id, body, refused=True)
            raise _not_found("Parent", parent_id, "POST", path)
        if child_id not in self.accounts["students"]:
            self._log("link_child", "parents", parent_id, body, refused=True)
            raise _refusal({"child": ["must exist"]}, "POST", path)
        self._log("link_child", "parents", parent_id, body)
        self.links[(parent_id, child_id)] = relationship

    async def relink_child(self, parent_id: int, child_id: int, relationship: str) -> None:
        await self._reach()
        body = {"child_id": child_id, "relationship": relationship}
        missing = (parent_id, child_id) not in self.links
        self._log("relink_child", "parents", parent_id, body, refused=missing)
        if missing:
            reason = f"Student {child_id} is not a child of Parent {parent_id}"
            raise ManagebacRejectedError(
                404,
                orjson.dumps({"error": "Not Found", "reason": reason}).decode(),
                "PUT",
                f"/v2/parents/{parent_id}/children/{child_id}",
            )
        self.links[(parent_id, child_id)] = relationship

    async def unlink_child(self, parent_id: int, child_id: int) -> None:
        await self._reach()
        self._log("unlink_child", "parents", parent_id, {"child_id": child_id})
        self.links.pop((parent_id, child_id), None)  # already gone counts as removed

    async def find_student(self, student_id: str) -> RemoteUser | None:
        await self._reach()
        self.lookups.append(("find_student", "students", student_id))
        for user in self.accounts["students"].values():
            if user.fields.get("student_id") == student_id:
                return self._remote(user)
        return None

    async def find_by_email(self, resource: Resource, email: str) -> RemoteUser | None:
        await self._reach()
        self.lookups.append(("find_by_email", resource, email))
        for user in self.accounts[resource].values():
            found = user.fields.get("email")
            if isinstance(found, str) and found.casefold() == email.casefold():
                return self._remote(user)
        return None

    async def permissions(self) -> frozenset[str]:
        await self._reach()
        self.lookups.append(("permissions", "teachers", ""))
        return self.rights

    async def users(self, resource: Resource) -> AsyncIterator[RemoteUser]:
        await self._reach()
        self.lookups.append(("users", resource, ""))
        for user in list(self.users_of(resource)):
            listed = self._remote(user)
            if resource == "parents" and self.parents_listed_with_children:
                links = sorted(self.children_of(user.id).items())
                children = [{"id": child, "relationship": rel} for child, rel in links]
                fields = {**listed.fields, "child_ids": [c for c, _ in links], "children": children}
                listed = RemoteUser(id=listed.id, archived=listed.archived, fields=fields)
            yield listed

    async def children(self, parent_id: int) -> dict[int, str | None]:
        await self._reach()
        self.lookups.append(("children", "parents", str(parent_id)))
        if parent_id not in self.accounts["parents"]:
            raise _not_found("Parent", parent_id, "GET", f"/v2/parents/{parent_id}/children")
        return dict(self.children_of(parent_id))

    async def year_groups(self, modified_since: datetime | None = None) -> list[Record]:
        await self._reach()
        self.lookups.append(("year_groups", "students", str(modified_since or "")))
        return [
            _json_copy(group)
            for group in (self.cohorts if self.listing is None else self.listing)
            if modified_since is None
            or datetime.fromisoformat(str(group["updated_at"])) >= modified_since
        ]

    # For tests: what ManageBac+ holds (not part of the port, and not logged).

    def add_cohort(
        self, cohort_id: int, grade: str, *, archived: bool = False, at: datetime | None = None
    ) -> Record:
        """Add a year group now in `grade` (`myp;8`: grade number 8 of the program myp);
        the grade joins its program's grades, which `transition` moves cohorts along."""
        program, number = grade.split(";")
        numbers = self.program_grades.setdefault(program, [])
        numbers[:] = sorted({*numbers, int(number)})
        cohort: Record = {
            "id": cohort_id,
            "name": f"{program.upper()} cohort {cohort_id} (grade {number})",
            "program_code": program,
            "grade_number": int(number),
            "archived": archived,
            "updated_at": (at or datetime.now(UTC)).isoformat(),
        }
        self.cohorts.append(cohort)
        return cohort

    def cohort(self, cohort_id: int) -> Record:
        """Return one year group; fail the test when there is none."""
        (found,) = [c for c in self.cohorts if c["id"] == cohort_id]
        return found

    def cohort_in(self, grade: str) -> int:
        """Return the id of the one active year group of `grade`; fail the test otherwise."""
        program, number = grade.split(";")
        (found,) = [
            c["id"]
            for c in self.cohorts
            if (c["program_code"], c["grade_number"], c["archived"])
            == (program, int(number), False)
        ]
        return int(found)

    def transition(self, at: datetime | None = None) -> dict[str, list[int]]:
        """Run the academic-year transition: per program, the cohort in its last grade is
        archived, every other active one moves up one grade (same id), and a new cohort
        (a new id) starts in its first grade; each one touched gets `updated_at` = `at`."""
        stamp = (at or datetime.now(UTC)).isoformat()
        done: dict[str, list[int]] = {"archived": [], "moved": [], "created": []}
        for cohort in self.cohorts:
            numbers = self.program_grades[cohort["program_code"]]
            if cohort["archived"]:
                continue
            cohort["updated_at"] = stamp
            position = numbers.index(cohort["grade_number"])
            if position + 1 == len(numbers):
                cohort["archived"] = True
                done["archived"].append(cohort["id"])
            else:
                cohort["grade_number"] = numbers[position + 1]
                done["moved"].append(cohort["id"])
        for program, numbers in self.program_grades.items():
            new_id = max(int(c["id"]) for c in self.cohorts) + 1
            self.add_cohort(new_id, f"{program};{numbers[0]}", at=datetime.fromisoformat(stamp))
            done["created"].append(new_id)
        return done

    def users_of(self, resource: Resource) -> list[FakeUser]:
        """Return the users of one resource, archived ones too, by id."""
        return [self.accounts[resource][user_id] for user_id in sorted(self.accounts[resource])]

    def seed(self, resource: Resource, *, archived: bool = False, **fields: Any) -> FakeUser:
        """Add a user ManageBac+ already has (no write is logged, nothing is checked)."""
        user = FakeUser(self._next_id, resource, archived, dict(fields))
        self._next_id += 1
        self.accounts[resource][user.id] = user
        return user

    def user(self, resource: Resource, user_id: int | None) -> FakeUser:
        """Return one user; fail the test when there is none."""
        assert user_id is not None, f"no {resource} id"
        found = self.accounts[resource].get(user_id)
        assert found is not None, f"ManageBac+ has no {resource} {user_id}"
        return found

    def with_email(self, resource: Resource, email: str) -> list[FakeUser]:
        """Return the users of `resource` with this e-mail (case ignored)."""
        return [
            user
            for user in self.accounts[resource].values()
            if str(user.fields.get("email", "")).casefold() == email.casefold()
        ]

    def student(self, student_id: str) -> FakeUser:
        """Return the one student with this student_id; fail the test otherwise."""
        (found,) = [
            u
            for u in self.accounts["students"].values()
            if u.fields.get("student_id") == student_id
        ]
        return found

    def looked_up(self, method: str) -> int:
        """Count the reads of one port method (`users`, `children`, `find_by_email`, …)."""
        return sum(1 for called, _, _ in self.lookups if called == method)

    def children_of(self, parent_id: int) -> dict[int, str]:
        """Return a parent's links: child id -> relationship."""
        return {child: rel for (parent, child), rel in self.links.items() if parent == parent_id}

    def sent(self, method: str, resource: Resource) -> list[Mapping[str, Any]]:
        """Return the bodies of the writes of one method on one resource, in order."""
        return [r.body for r in self.requests if (r.method, r.resource) == (method, resource)]

    def writes_since(self, mark: int) -> list[tuple[str, Resource, int | None]]:
        """Return the writes made after the first `mark` ones (`mark = len(requests)`)."""
        return self.writes[mark:]

    # Internals.

    async def _reach(self) -> None:
        await _io()
        if self.failing is not None:
            raise self.failing

    def _log(
        self,
        method: str,
        resource: Resource,
        user_id: int | None,
        body: Mapping[str, Any],
        refused: bool = False,
    ) -> None:
        self.requests.append(WriteRequest(method, resource, user_id, body, refused))

    def _invalid(
        self, resource: Resource, user_id: int | None, values: Mapping[str, Any], creating: bool
    ) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        for name in _REQUIRED:
            if (creating and name not in values) or (name in values and not values[name]):
                errors.setdefault(name, []).append("can't be blank")
        email = values.get("email")
        if isinstance(email, str) and email:
            for other in (user for table in self.accounts.values() for user in table.values()):
                theirs = str(other.fields.get("email", ""))
                itself = (other.resource, other.id) == (resource, user_id)
                if not itself and theirs.casefold() == email.casefold():
                    errors.setdefault("email", []).append(TAKEN)
        student_id = values.get("student_id")
        if resource == "students" and student_id:
            for other in self.accounts["students"].values():
                if other.id != user_id and other.fields.get("student_id") == student_id:
                    errors.setdefault("student_id", []).append(TAKEN)
        group = values.get("year_group_id")
        if resource == "students" and group and self.cohorts:
            known = [c for c in self.cohorts if c["id"] == group]
            if not known:
                errors.setdefault("year_group_id", []).append("must exist")
            elif known[0]["archived"]:
                errors.setdefault("year_group_id", []).append("is archived")
        return {name: sorted(set(messages)) for name, messages in errors.items()}

    @staticmethod
    def _remote(user: FakeUser) -> RemoteUser:
        fields = {"id": user.id, "archived": user.archived, **_json_copy(user.fields)}
        return RemoteUser(id=user.id, archived=user.archived, fields=fields)


# --- Kafka ------------------------------------------------------------------------------------


class FakePublisher:
    """Kafka's side of `PublisherPort`: records each acknowledged `(topic, message)`.

    `fail_with(error, after=n)`: from then on each publish call acknowledges its first `n`
    messages (a partial publish) and raises `error`; `recover()` ends that.
    """

    def __init__(self) -> None:
        self.published: list[tuple[str, OutgoingMessage]] = []
        self.failing: PublishError | None = None
        self.accepted_before_failing = 0

    def fail_with(self, error: PublishError, *, after: int = 0) -> None:
        self.failing = error
        self.accepted_before_failing = after

    def recover(self) -> None:
        self.failing = None

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        await _io()
        if self.failing is None:
            self.published.extend((topic, message) for message in messages)
            return
        taken = messages[: self.accepted_before_failing]
        self.published.extend((topic, message) for message in taken)
        raise self.failing

    async def ping(self) -> bool:
        await _io()
        return self.failing is None

    def changes(self) -> list[QueuedChange]:
        """Return the published messages' values as queued changes, in order."""
        return [QueuedChange.from_bytes(message.value) for _, message in self.published]


# --- building the object graph from fakes -----------------------------------------------------


def school_settings(
    school_id: str = SCHOOL_ID,
    *,
    mappings: Mapping[str, Any] | None = None,
    staff: Mapping[str, Any] | None = None,
    **more: Any,
) -> School:
    """Return one school's settings as the schools file gives them (YEAR_GROUPS mapped,
    Parents and Guardian synced, staff enabled and archived on a revoked access)."""
    return School.model_validate(
        {
            "id": school_id,
            "webhook_secrets": [SECRET],
            "isams": {
                "base_url": "https://isams.invalid",
                "client_id": "unit",
                "client_secret": "unused",
            },
            "managebac": {"base_url": "https://managebac.invalid", "token": "unused"},
            "mappings": {"year_groups": YEAR_GROUPS, **(mappings or {})},
            "staff": dict(staff or {}),
            **more,
        }
    )


@dataclass
class FakeSchool:
    """One school's settings and the fakes behind its two ports."""

    settings: School
    isams: FakeIsams = field(default_factory=FakeIsams)
    managebac: FakeManagebac = field(default_factory=FakeManagebac)

    @property
    def id(self) -> str:
        return self.settings.id

    def ports(self) -> SchoolPorts:
        return SchoolPorts(settings=self.settings, isams=self.isams, managebac=self.managebac)


class FakeSync:
    """The one `SyncService` over fakes: each school's iSAMS and ManageBac+, one ledger.

    Also builds the changes a sender would queue: thin (ids only) or fat (the record as the
    fake iSAMS holds it now), each with an event timestamp one second after the last one,
    so that a change built earlier is an older one.
    """

    def __init__(self, *schools: School, ledger: FakeLedger | None = None) -> None:
        chosen = schools or (school_settings(),)
        self.ledger = ledger or FakeLedger()
        self.schools = {school.id: FakeSchool(school) for school in chosen}
        self.service = SyncService(
            {school_id: fake.ports() for school_id, fake in self.schools.items()}, self.ledger
        )
        self._clock = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)

    @property
    def school(self) -> FakeSchool:
        """The first school (most tests have one)."""
        return next(iter(self.schools.values()))

    @property
    def isams(self) -> FakeIsams:
        return self.school.isams

    @property
    def managebac(self) -> FakeManagebac:
        return self.school.managebac

    def context(self, school_id: str | None = None) -> SyncContext:
        """Return a sync context over one school's fakes and the ledger (its own locks)."""
        school = self.schools[school_id] if school_id else self.school
        return SyncContext(school.ports(), self.ledger)

    async def process(self, change: QueuedChange) -> Result:
        """Apply one change, as the consumer does."""
        return await self.service.process(change)

    async def process_all(self, changes: Sequence[QueuedChange]) -> list[Result]:
        """Apply changes one after the other."""
        return [await self.process(change) for change in changes]

    # Changes, as a sender queues them.

    def change(
        self, type_: EventType, data: Mapping[str, Any], school_id: str | None = None
    ) -> QueuedChange:
        self._clock += timedelta(seconds=1)
        return QueuedChange.model_validate(
            {
                "type": type_,
                "timestamp": self._clock,
                "data": dict(data),
                "school": school_id or self.school.id,
                "webhook_id": f"msg_{self._clock.timestamp():.0f}",
                "received_at": datetime.now(UTC),
            }
        )

    def student_event(
        self, school_id: str, *, fat: bool = False, action: str = "updated"
    ) -> QueuedChange:
        """A student change; fat: with the pupil's record (current or leaver) as it is now."""
        data: dict[str, Any] = {"schoolId": school_id}
        if fat:
            data["record"] = self.isams.students.get(school_id) or self.isams.alumni[school_id]
        return self.change(_event_type("student", action), data)

    def contact_event(
        self,
        contact_id: object,
        student_id: str,
        *,
        fat: bool = False,
        action: str = "updated",
    ) -> QueuedChange:
        """A contact change; fat: with the contact record as iSAMS holds it now."""
        data: dict[str, Any] = {"id": str(contact_id), "schoolId": student_id}
        if fat:
            record = self.isams.contact(contact_id)
            assert record is not None, f"iSAMS has no contact {contact_id}"
            data["record"] = record
        return self.change(_event_type("contact", action), data)

    def staff_event(
        self,
        employee_id: object,
        *,
        access: bool | None = None,
        fat: bool = False,
        action: str = "updated",
    ) -> QueuedChange:
        """A staff change, with `managebacAccess` when `access` is given; fat: with the
        employee record as iSAMS holds it now."""
        data: dict[str, Any] = {"id": str(employee_id)}
        if access is not None:
            data["managebacAccess"] = access
        if fat:
            data["record"] = self.isams.employees[str(employee_id)]
        return self.change(_event_type("staff", action), data)


def _event_type(kind: str, action: str) -> EventType:
    type_ = f"{kind}.{action}"
    assert type_ in EVENT_TYPES, type_
    return type_  # type: ignore[return-value]  # one of EVENT_TYPES, checked just above


def fake_services(
    schools: SchoolsFile,
    *,
    publisher: FakePublisher | None = None,
    ledger: FakeLedger | None = None,
    settings: Settings | None = None,
) -> Services:
    """Build `Services` for `create_app` from fakes: no broker, no database, no HTTP."""
    return Services(
        settings=settings or Settings.model_construct(),
        schools=schools,
        ledger=ledger or FakeLedger(),
        publisher=publisher or FakePublisher(),
        school_ports={school.id: FakeSchool(school).ports() for school in schools.schools},
    )
