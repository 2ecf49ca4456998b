"""Read what iSAMS has of one school now: pupils on roll and leavers, staff, and the contacts
of each pupil on roll.

Contacts come from each current pupil's own list (`IsamsPort.student_contacts`), the one
contact read the port has today; a poller that adds the paged contact list can swap it in
here. A pupil who is not on roll has no contact list in iSAMS: what the ledger remembers of
their contacts stands, as in the change path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass

from consumers.ports import IsamsPort, Record

Progress = Callable[[str, int, int], None]
CONTACT_READS_AT_ONCE = 4  # iSAMS answers each pupil's list apart; a few at a time


@dataclass(frozen=True)
class IsamsState:
    """One school's iSAMS records by id: `students` on roll, `alumni` (leavers, with their
    leavingDate), `employees`, and `contacts` per pupil on roll (None: iSAMS gave no list)."""

    students: Mapping[str, Record]
    alumni: Mapping[str, Record]
    employees: Mapping[str, Record]
    contacts: Mapping[str, list[Record] | None]

    @property
    def pupils(self) -> dict[str, Record]:
        """Every pupil iSAMS lists, on roll or left (on roll wins, as in a backfill)."""
        return {**self.alumni, **self.students}

    @classmethod
    def of(
        cls,
        students: Iterable[Record],
        alumni: Iterable[Record],
        employees: Iterable[Record],
        contacts: Mapping[str, list[Record] | None],
    ) -> IsamsState:
        """Index raw lists by id (a pupil's schoolId, an employee's id)."""
        return cls(
            students=_by(students, "schoolId"),
            alumni=_by(alumni, "schoolId"),
            employees=_by(employees, "id"),
            contacts=dict(contacts),
        )


async def read_isams(isams: IsamsPort, progress: Progress | None = None) -> IsamsState:
    """Read the whole school: every list, then each current pupil's contacts."""
    students = await collect(isams.all_students(), "students", progress)
    alumni = await collect(isams.all_alumni(), "alumni", progress)
    employees = await collect(isams.all_employees(), "staff", progress)
    on_roll = list(_by(students, "schoolId"))
    contacts = await read_contacts(isams, on_roll, progress)
    return IsamsState.of(students, alumni, employees, contacts)


async def read_contacts(
    isams: IsamsPort, student_ids: Iterable[str], progress: Progress | None = None
) -> dict[str, list[Record] | None]:
    """Read each pupil's contact list, a few at a time; the result keeps the pupils' order."""
    wanted = list(student_ids)
    found: dict[str, list[Record] | None] = {}
    gate = asyncio.Semaphore(CONTACT_READS_AT_ONCE)

    async def one(student_id: str) -> None:
        async with gate:
            found[student_id] = await isams.student_contacts(student_id)
        if progress is not None:
            progress("contacts", len(found), len(wanted))

    tasks = [asyncio.ensure_future(one(student_id)) for student_id in wanted]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:  # one failed read ends the run: stop the others too
            task.cancel()
        raise
    return {student_id: found[student_id] for student_id in wanted}


async def collect(
    source: AsyncIterator[Record], name: str, progress: Progress | None
) -> list[Record]:
    """Read a paged list to its end, reporting progress every hundred records."""
    items: list[Record] = []
    async for item in source:
        items.append(item)
        if progress is not None and len(items) % 100 == 0:
            progress(name, len(items), 0)
    if progress is not None:
        progress(name, len(items), len(items))
    return items


def _by(records: Iterable[Record], key: str) -> dict[str, Record]:
    return {str(record[key]): record for record in records if record.get(key) not in (None, "")}
