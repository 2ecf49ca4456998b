"""The simulated school's records: the one store the REST simulator and the emitter share.

Records are plain JSON dicts in iSAMS REST shapes (docs/reference/isams-fields.md). Every pupil
(current, leaver, applicant) lives in `students`; `systemStatus` decides which iSAMS list
shows them (`roll_of`), so a status edit moves a pupil between lists the way iSAMS does.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

Record = dict[str, Any]
Collection = Literal["students", "contacts", "employees"]
Roll = Literal["current", "alumni", "applicants"]
"""The iSAMS list a pupil is on: `/api/students`, `/api/alumni` or the admissions applicants."""

LEAVER_STATUS = "Leaver"
# Assumed: the generated school marks applicants "Future"; iSAMS's own status names vary by
# version, so "Applicant" counts too. Every status other than these and "Current" is a leaver.
APPLICANT_STATUSES = frozenset({"future", "applicant"})
_ROLL_NOUNS: dict[Roll, str] = {
    "current": "current pupil",
    "alumni": "former pupil",
    "applicants": "applicant",
}

# iSAMS answers an empty name list as [""] (students and employees), never as [].
NAME_LISTS = frozenset({"nationalities", "languages"})

# The second person of a joint contact. The names and e-mail fields are ASSUMED: public client
# code shows `secondaryPersonId`, `secondaryPersonGuid` and `relationshipOfJointContact` only;
# an iSAMS portal client patches `/secondaryTitle`, `/secondaryForename` and
# `/secondarySurname` on a contact, and the rest follow the first person's field names.
SECONDARY_PERSON_FIELDS = (
    "secondaryTitle",
    "secondaryForename",
    "secondaryMiddleNames",
    "secondarySurname",
    "secondaryEmailAddress",
    "secondaryMobileNumber",
)
JOINT_FIELDS = ("secondaryPersonId", "secondaryPersonGuid", "relationshipOfJointContact")

# Fields of a contact record that belong to the person, not to the student-contact link:
# editing one contact record changes them on every record of the same person (siblings).
CONTACT_PERSON_FIELDS = frozenset(
    {
        "title",
        "forename",
        "middleNames",
        "surname",
        "emailAddress",
        "mobileNumber",
        "telephoneNumber",
        "workTelephoneNumber",
        "address1",
        "address2",
        "address3",
        "town",
        "county",
        "postcode",
        "country",
        "profession",
        "deceased",
        *SECONDARY_PERSON_FIELDS,
    }
)
_READ_ONLY_FIELDS = {
    "student": frozenset({"id", "schoolId"}),
    "contact": frozenset(
        {"id", "schoolId", "personId", "personGuid", "secondaryPersonId", "secondaryPersonGuid"}
    ),
    "employee": frozenset({"id"}),
}


class UnknownRecordError(KeyError):
    """The simulated school has no record with that id (or none on the list asked for)."""


class UnknownFieldError(ValueError):
    """A patch names a field the record does not have, or one that cannot change."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """Format like iSAMS `lastUpdated`: naive UTC with milliseconds, no offset."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def iso_date(day: date) -> str:
    """Format like iSAMS dates: midnight time part included."""
    return f"{day.isoformat()}T00:00:00"


def roll_of(record: Mapping[str, Any]) -> Roll:
    """Say which iSAMS list shows a pupil, from their `systemStatus` (case ignored)."""
    status = str(record.get("systemStatus") or "").strip().casefold()
    if status == "current":
        return "current"
    if status in APPLICANT_STATUSES:
        return "applicants"
    return "alumni"


def name_list(names: Iterable[str]) -> list[str]:
    """Return names as iSAMS sends them: an empty list becomes `[""]`."""
    return list(names) or [""]


def _as_sent(name: str, value: Any) -> Any:
    """Return a patched value as iSAMS would store and send it."""
    if name in NAME_LISTS and isinstance(value, list):
        return name_list(value)
    return value


@dataclass
class SchoolData:
    """The school's records, keyed by iSAMS id, shared by the REST simulator and the emitter.

    Reads return deep copies; changes go through the `edit_*` methods, which bump
    `lastUpdated` so consumers see a newer record. Employees carry no `lastUpdated` (iSAMS
    shows none on them); their edits count in `employee_revisions` instead. Thread-safe,
    because tests may serve it from a uvicorn thread while the emitter runs elsewhere.
    """

    seed: int
    students: dict[str, Record]  # schoolId -> record, in id order; every roll
    contacts: dict[int, Record]  # contact id -> record; `schoolId` names the student
    employees: dict[int, Record]  # employee id -> record
    year_groups: list[Record]
    managebac_access: dict[int, bool]  # employee id -> third-party access to ManageBac+
    clock: Callable[[], datetime] = _utc_now
    employee_revisions: dict[int, int] = field(default_factory=dict)  # id -> edits so far
    _lock: threading.RLock = field(
        default_factory=threading.RLock, init=False, repr=False, compare=False
    )

    # Reads -------------------------------------------------------------------------------

    def page(self, collection: Collection, start: int, stop: int) -> tuple[int, list[Record]]:
        """Return the whole collection's size and copies of the records in [start, stop)."""
        with self._lock:
            records = list(getattr(self, collection).values())
            return len(records), copy.deepcopy(records[start:stop])

    def pupils(self, roll: Roll, start: int, stop: int) -> tuple[int, list[Record]]:
        """Return how many pupils one iSAMS list holds and copies of those in [start, stop)."""
        with self._lock:
            records = [r for r in self.students.values() if roll_of(r) == roll]
            return len(records), copy.deepcopy(records[start:stop])

    def pupil(self, roll: Roll, school_id: str) -> Record:
        """Return a copy of a pupil on one iSAMS list (raises if unknown or on another)."""
        with self._lock:
            return copy.deepcopy(self._on_roll(roll, school_id))

    def student(self, school_id: str) -> Record:
        """Return a copy of one pupil's record, whichever list shows them."""
        with self._lock:
            return copy.deepcopy(self._student(school_id))

    def all_students(self) -> list[Record]:
        """Return copies of every pupil: current, leavers and applicants."""
        with self._lock:
            return copy.deepcopy(list(self.students.values()))

    def contact(self, contact_id: int) -> Record:
        with self._lock:
            return copy.deepcopy(self._contact(contact_id))

    def all_contacts(self) -> list[Record]:
        with self._lock:
            return copy.deepcopy(list(self.contacts.values()))

    def contacts_of(self, school_id: str) -> list[Record]:
        """Return copies of a pupil's contact records (raises if the pupil is unknown)."""
        with self._lock:
            self._student(school_id)
            return copy.deepcopy([c for c in self.contacts.values() if c["schoolId"] == school_id])

    def listed_contacts(
        self, start: int, stop: int, include_deceased: bool = False
    ) -> tuple[int, list[Record]]:
        """Return the contacts of current pupils as `GET /api/students/contacts` pages them.

        A leaver's or applicant's contacts are kept (they come back if the pupil does) but
        are not listed, as iSAMS lists contacts under current pupils only.
        """
        with self._lock:
            records = [c for c in self.contacts.values() if self._listed(c, include_deceased)]
            return len(records), copy.deepcopy(records[start:stop])

    def current_contacts_of(self, school_id: str, include_deceased: bool = False) -> list[Record]:
        """Return a current pupil's contacts (raises if they are not a current pupil)."""
        with self._lock:
            self._on_roll("current", school_id)
            return copy.deepcopy(
                [
                    c
                    for c in self.contacts.values()
                    if c["schoolId"] == school_id and (include_deceased or not c.get("deceased"))
                ]
            )

    def employee(self, employee_id: int) -> Record:
        with self._lock:
            return copy.deepcopy(self._employee(employee_id))

    def all_employees(self) -> list[Record]:
        with self._lock:
            return copy.deepcopy(list(self.employees.values()))

    def employee_revision(self, employee_id: int) -> int:
        """Return how often a staff record was edited: iSAMS shows no `lastUpdated` on staff."""
        with self._lock:
            self._employee(employee_id)
            return self.employee_revisions.get(employee_id, 0)

    def sibling_groups(self) -> list[list[str]]:
        """Return the schoolIds of students who share at least one contact person."""
        with self._lock:
            by_person: dict[str, set[str]] = {}
            for contact in self.contacts.values():
                by_person.setdefault(contact["personGuid"], set()).add(contact["schoolId"])
        groups: list[set[str]] = []
        for children in by_person.values():
            if len(children) < 2:
                continue
            overlapping = [g for g in groups if g & children]
            merged = set(children).union(*overlapping)
            groups = [g for g in groups if not g & children] + [merged]
        return sorted(sorted(g) for g in groups)

    def summary(self) -> Record:
        """Return ids and counts, for tests and demos that need to know what exists."""
        with self._lock:
            rolls: dict[Roll, list[str]] = {roll: [] for roll in _ROLL_NOUNS}
            for school_id, record in self.students.items():
                rolls[roll_of(record)].append(school_id)
            contacts = self.contacts.values()
            return {
                "seed": self.seed,
                "students": len(self.students),
                "contacts": len(self.contacts),
                "contactPersons": len({c["personGuid"] for c in contacts}),
                "employees": len(self.employees),
                "studentIds": list(self.students),
                "currentStudentIds": rolls["current"],
                "alumniIds": rolls["alumni"],
                "applicantIds": rolls["applicants"],
                "contactIds": list(self.contacts),
                "jointContactIds": [c["id"] for c in contacts if c.get("secondaryPersonId")],
                "deceasedContactIds": [c["id"] for c in contacts if c.get("deceased")],
                "employeeIds": list(self.employees),
                "managebacAccess": {str(k): v for k, v in self.managebac_access.items()},
                "siblingGroups": self.sibling_groups(),
            }

    # Changes -----------------------------------------------------------------------------

    def edit_student(self, school_id: str, patch: Mapping[str, Any]) -> Record:
        """Apply a field patch to a pupil, bump `lastUpdated`, return the new record.

        A `systemStatus` change moves the pupil between iSAMS lists; a leaver without a
        `leavingDate` gets today's, and a returning pupil's leaving fields are cleared,
        unless the patch sets them itself.
        """
        with self._lock:
            record = self._student(school_id)
            was = roll_of(record)
            self._apply(record, patch, "student")
            self._settle_leaving(record, was, patch)
            if {"forename", "surname"} & patch.keys() and "fullName" not in patch:
                record["fullName"] = f"{record['forename']} {record['surname']}"
            return copy.deepcopy(record)

    def leave(self, school_id: str, on: date | None = None, reason: str | None = None) -> Record:
        """Make a current pupil a leaver (on `on`, default today): iSAMS moves them to alumni."""
        with self._lock:
            record = self._on_roll("current", school_id)
            day = on or self.clock().astimezone(UTC).date()
            patch = {"systemStatus": LEAVER_STATUS, "leavingDate": iso_date(day)}
            self._apply(record, {**patch, "leavingReason": reason}, "student")
            return copy.deepcopy(record)

    def remove_student(self, school_id: str) -> Record:
        """Delete a pupil and their contact records, as after a data error: on no list at all."""
        with self._lock:
            self._student(school_id)
            record = self.students.pop(school_id)
            for contact_id in [k for k, c in self.contacts.items() if c["schoolId"] == school_id]:
                del self.contacts[contact_id]
            return record

    def edit_contact(self, contact_id: int, patch: Mapping[str, Any]) -> Record:
        """Apply a patch to a contact; person fields change on every record of the person."""
        with self._lock:
            record = self._contact(contact_id)
            self._check_fields(record, patch, "contact")
            person = {k: v for k, v in patch.items() if k in CONTACT_PERSON_FIELDS}
            if person:
                for other in self.contacts.values():
                    if other is not record and other["personGuid"] == record["personGuid"]:
                        self._apply(other, person, "contact")
            self._apply(record, patch, "contact")
            return copy.deepcopy(record)

    def contact_ids_of_person(self, person_guid: str) -> list[int]:
        """Return the contact ids of one person (one per child)."""
        with self._lock:
            return [k for k, c in self.contacts.items() if c["personGuid"] == person_guid]

    def remove_contact(self, contact_id: int) -> Record:
        """Delete a contact record (the person stops being this student's contact)."""
        with self._lock:
            self._contact(contact_id)
            return self.contacts.pop(contact_id)

    def edit_employee(self, employee_id: int, patch: Mapping[str, Any]) -> Record:
        """Apply a patch to a staff record; a `managebacAccess` key sets the user's access."""
        with self._lock:
            record = self._employee(employee_id)
            fields = dict(patch)
            access = fields.pop("managebacAccess", None)
            if access is not None and not isinstance(access, bool):
                raise UnknownFieldError("managebacAccess must be true or false")
            self._check_fields(record, fields, "employee")
            if access is not None:
                self.managebac_access[employee_id] = access
            if fields or access is not None:
                self._apply(record, fields, "employee")
            return copy.deepcopy(record)

    def touch_time(self, previous: str | None) -> str:
        """Return a `lastUpdated` later than `previous`, so every change reads as newer."""
        now = self.clock()
        if previous:
            try:
                before = datetime.fromisoformat(previous).replace(tzinfo=UTC)
            except ValueError:
                before = None
            if before is not None and now <= before:
                now = before + timedelta(milliseconds=1)
        return format_timestamp(now)

    # Internals ---------------------------------------------------------------------------

    def _student(self, school_id: str) -> Record:
        try:
            return self.students[school_id]
        except KeyError:
            raise UnknownRecordError(f"no student with schoolId {school_id}") from None

    def _on_roll(self, roll: Roll, school_id: str) -> Record:
        record = self.students.get(school_id)
        if record is None or roll_of(record) != roll:
            raise UnknownRecordError(f"no {_ROLL_NOUNS[roll]} with schoolId {school_id}")
        return record

    def _listed(self, contact: Record, include_deceased: bool) -> bool:
        student = self.students.get(contact["schoolId"])
        current = student is not None and roll_of(student) == "current"
        return current and (include_deceased or not contact.get("deceased"))

    def _contact(self, contact_id: int) -> Record:
        try:
            return self.contacts[contact_id]
        except KeyError:
            raise UnknownRecordError(f"no contact with id {contact_id}") from None

    def _employee(self, employee_id: int) -> Record:
        try:
            return self.employees[employee_id]
        except KeyError:
            raise UnknownRecordError(f"no employee with id {employee_id}") from None

    def _settle_leaving(self, record: Record, was: Roll, patch: Mapping[str, Any]) -> None:
        """Keep the leaving fields in step with a status change the patch made."""
        now = roll_of(record)
        if now == "alumni" and was != "alumni":
            if not record.get("leavingDate") and "leavingDate" not in patch:
                record["leavingDate"] = iso_date(self.clock().astimezone(UTC).date())
        elif was == "alumni" and now != "alumni":
            for name in ("leavingDate", "leavingReason"):
                if name not in patch:
                    record[name] = None

    @staticmethod
    def _check_fields(record: Record, patch: Mapping[str, Any], kind: str) -> None:
        unknown = sorted(k for k in patch if k not in record)
        if unknown:
            raise UnknownFieldError(f"{kind} has no field(s): {', '.join(unknown)}")
        fixed = sorted(k for k in patch if k in _READ_ONLY_FIELDS[kind])
        if fixed:
            raise UnknownFieldError(f"{kind} field(s) cannot change: {', '.join(fixed)}")

    def _apply(self, record: Record, patch: Mapping[str, Any], kind: str) -> None:
        """Write a patch; an explicit `lastUpdated` in it wins (for stale-event tests)."""
        self._check_fields(record, patch, kind)
        record.update({k: _as_sent(k, copy.deepcopy(v)) for k, v in patch.items()})
        if kind == "employee":
            self.employee_revisions[record["id"]] = self.employee_revisions.get(record["id"], 0) + 1
        elif "lastUpdated" not in patch:
            record["lastUpdated"] = self.touch_time(record.get("lastUpdated"))
