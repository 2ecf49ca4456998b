"""Two faults found by the fakes' author, each pinned by a scenario that failed before."""

from __future__ import annotations

from datetime import date

from consumers.domain.records import Status
from consumers.outcomes import Outcome
from tests.fakes import FakeSync
from tests.unit.sync.records import a_contact, a_student, an_employee


async def test_an_older_thin_staff_event_sent_again_does_not_bring_back_a_revoked_access() -> None:
    """A staff event's `managebacAccess` is state of its own: a resent "granted" that is
    older than the revocation is stale (its version is the event's time)."""
    sync = FakeSync()
    sync.isams.add_employee(an_employee(17))
    granted = sync.staff_event(17, access=True)
    await sync.process(granted)
    await sync.process(sync.staff_event(17, access=False))
    (teacher,) = sync.managebac.users_of("teachers")
    assert teacher.archived

    result = await sync.process(granted)  # the sender's retry, or a replay

    assert result.outcome is Outcome.STALE
    assert sync.managebac.users_of("teachers")[0].archived


async def test_a_thin_contact_event_for_a_pupil_who_left_does_not_unlink_as_removed() -> None:
    """A pupil who left has no contact list in iSAMS; their contact is not removed for that."""
    sync = FakeSync()
    sync.isams.add_student(a_student("S1"))
    sync.isams.add_student(a_student("S2", schoolCode="C-S2"))
    sync.isams.add_contact(a_contact(31, "S1", "P1"))
    sync.isams.add_contact(a_contact(32, "S2", "P1"))
    await sync.process_all([sync.student_event("S1"), sync.student_event("S2")])
    sync.isams.leave("S1", on=date(2026, 7, 20))
    await sync.process(sync.student_event("S1"))
    sync.isams.update_contact(31, mobileNumber="07700 900999")

    await sync.process(sync.contact_event(31, "S1"))

    row = sync.ledger.row("contact", "31")
    assert row.reason != "removed in iSAMS"
    assert row.source.record is not None  # the record last seen is kept
    (parent,) = sync.managebac.users_of("parents")
    assert parent.archived is False  # S2 is still active: the parent stays
    assert sync.ledger.row("contact", "32").status is Status.SYNCED
