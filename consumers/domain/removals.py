"""What a poll cycle makes of the records it no longer finds: leavers, removals, holds.

docs/design.md §6 ("Removals guard", "Precise semantics"): a record the poller published
before and no longer finds is one of
- a leaver: a pupil gone from `/api/students` but in `/api/alumni` (explained, and already
  published as a change with their alumni record, so not decided here);
- a removal: a pupil in neither list, a member of staff gone from the employees, a contact
  gone from a current pupil's contacts. Unexplained: guarded;
- a contact following their child: a contact of a leaver or of a removed pupil. Parents
  follow their children (the student's own change reconciles them), so no contact event
  is published for it; its hash goes when its student's change is published;
- not judged at all: when a list it depends on could not be read (a 403, a 404, iSAMS
  unavailable), its removals are held and the other lists still flow.

The guard then judges the unexplained removals each cycle: pupils and staff together,
against the school's synced students and staff (what ManageBac+ would lose); contacts on
their own, against the contacts the poller knows (an emptied contact list would otherwise
unlink every parent). Held removals change nothing, so they stay held until iSAMS lists
them again or a forced run releases them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Set
from dataclasses import dataclass, field
from typing import Literal

from consumers.domain.guard import GuardDecision, guard_archives

PollList = Literal["students", "alumni", "contacts", "employees"]
POLL_LISTS: tuple[PollList, ...] = ("students", "alumni", "contacts", "employees")
Kind = Literal["student", "contact", "staff"]
CONTACTS_NOUN = ("contact known to the poller", "contacts known to the poller")


@dataclass(frozen=True)
class Listing:
    """The ids one cycle found on each list, and the lists it could not read (with why)."""

    students: Set[str]
    alumni: Set[str]
    contacts: Set[str]
    employees: Set[str]
    failed: Mapping[PollList, str] = field(default_factory=dict)

    def read(self, *lists: PollList) -> bool:
        """Tell whether every one of `lists` was read whole."""
        return not any(name in self.failed for name in lists)


@dataclass(frozen=True)
class Known:
    """What the poller published before this cycle: ids per kind, a contact's student."""

    students: Collection[str]
    staff: Collection[str]
    contacts: Mapping[str, str | None]  # contact id -> the student's schoolId


@dataclass(frozen=True)
class Held:
    """Removals not published this cycle, and why (for the ledger, the log and metrics)."""

    list: PollList
    ids: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Removals:
    """The unexplained removals a cycle found, before the guard, and what it cannot judge."""

    students: tuple[str, ...] = ()
    staff: tuple[str, ...] = ()
    contacts: tuple[tuple[str, str | None], ...] = ()  # (contact id, student's schoolId)
    following_leavers: tuple[str, ...] = ()  # contact ids whose student left (alumni)
    following_removed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unjudged: tuple[Held, ...] = ()


def find_removals(known: Known, listing: Listing) -> Removals:
    """Sort what the poller knew and no longer finds into removals, followers and holds."""
    unjudged: list[Held] = []
    students: tuple[str, ...] = ()
    pupil_lists_read = listing.read("students", "alumni")
    missing_students = tuple(sorted(set(known.students) - listing.students - listing.alumni))
    if pupil_lists_read:
        students = missing_students
    elif missing_students:
        unjudged.append(
            Held("students", missing_students, _unreadable(listing, ("students", "alumni")))
        )

    staff: tuple[str, ...] = ()
    missing_staff = tuple(sorted(set(known.staff) - listing.employees))
    if listing.read("employees"):
        staff = missing_staff
    elif missing_staff:
        unjudged.append(Held("employees", missing_staff, _unreadable(listing, ("employees",))))

    contacts: list[tuple[str, str | None]] = []
    leavers: list[str] = []
    following: dict[str, list[str]] = {}
    not_told: list[str] = []
    missing_contacts = sorted(set(known.contacts) - listing.contacts)
    if not listing.read("contacts"):
        if missing_contacts:
            reason = _unreadable(listing, ("contacts",))
            unjudged.append(Held("contacts", tuple(missing_contacts), reason))
        missing_contacts = []
    removed_students = set(students)
    for contact_id in missing_contacts:
        student = known.contacts[contact_id]
        if student is not None and student in listing.students:
            contacts.append((contact_id, student))  # gone from a current pupil: a removal
        elif not pupil_lists_read:
            not_told.append(contact_id)  # is their pupil current, a leaver, gone? unknown
        elif student is not None and student in listing.alumni:
            leavers.append(contact_id)
        elif student is not None and student in removed_students:
            following.setdefault(student, []).append(contact_id)
        else:
            contacts.append((contact_id, student))  # a pupil the poller never listed
    if not_told:
        reason = _unreadable(listing, ("students", "alumni"))
        unjudged.append(Held("contacts", tuple(not_told), reason))
    return Removals(
        students=students,
        staff=staff,
        contacts=tuple(contacts),
        following_leavers=tuple(leavers),
        following_removed={student: tuple(ids) for student, ids in following.items()},
        unjudged=tuple(unjudged),
    )


def _unreadable(listing: Listing, lists: tuple[PollList, ...]) -> str:
    failed = [
        f"/api/{_path(name)} could not be read ({listing.failed[name]})"
        for name in lists
        if name in listing.failed
    ]
    return "removals held: " + "; ".join(failed)


def _path(name: PollList) -> str:
    return {
        "students": "students",
        "alumni": "alumni",
        "contacts": "students/contacts",
        "employees": "humanresources/employees",
    }[name]


@dataclass(frozen=True)
class Verdicts:
    """The guard's decisions on one cycle's unexplained removals."""

    people: GuardDecision
    contacts: GuardDecision


def judge_removals(
    removals: Removals, synced_people: Set[tuple[Kind, str]], known_contacts: int, force: bool
) -> Verdicts:
    """Judge pupils and staff together (what ManageBac+ would archive of its synced
    students and staff), and contacts on their own (of the contacts the poller knows)."""
    would_archive = sum(("student", i) in synced_people for i in removals.students) + sum(
        ("staff", i) in synced_people for i in removals.staff
    )
    people = guard_archives(would_archive, len(synced_people), force)
    contacts = guard_archives(
        len(removals.contacts), known_contacts, force, verb="remove", noun=CONTACTS_NOUN
    )
    return Verdicts(people=people, contacts=contacts)
