"""Poll cycles on real parts: the iSAMS simulator over HTTP (behaving like the real API),
the broker, the ledger on SQLite, and for the end-to-end cases the consumer and the
ManageBac+ simulator. What each cycle publishes is read back from the topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from consumers.domain.records import Status
from sim.isams.gate import NOT_AUTHORISED
from sim.isams.store import roll_of
from tests.integration.poll_support import PollRig, kinds, poll_rig
from tests.integration.sync_stack import SCHOOL, YEAR_GROUPS, Stack

pytestmark = pytest.mark.kafka


@pytest.fixture
async def rig(stack: Stack) -> AsyncIterator[PollRig]:
    async with poll_rig(stack) as running:
        yield running


async def first_cycle(rig: PollRig) -> None:
    report = await rig.cycle()
    assert report.ok, report.summary()
    await rig.published()


async def test_a_first_cycle_publishes_every_record_fat_and_a_second_nothing(
    rig: PollRig,
) -> None:
    report = await rig.cycle()

    changes = await rig.published()
    assert report.ok, report.summary()
    assert len(changes) == rig.listed_records() == report.published_total()
    assert all(c.data.record is not None and c.type.endswith(".updated") for c in changes)
    contacts = [c for c in changes if c.event.kind == "contact"]
    assert contacts and all(c.data.schoolId for c in contacts)
    assert all("countryIsoMappings" in (c.data.record or {}) for c in contacts)
    current = [
        c
        for c in changes
        if c.event.kind == "student" and (c.data.record or {}).get("systemStatus") == "Current"
    ]
    assert current and all("nationalityIsoMappings" in (c.data.record or {}) for c in current)
    stats = await rig.control("GET", "/stats")
    assert stats["requests"]["GET /api/students/contacts"] >= 1

    again = await rig.cycle()

    assert await rig.published() == []
    assert again.ok and again.published == {}
    assert again.isams_requests >= 4  # every list read again: the periodic full comparison


async def test_a_cycle_finds_each_kind_of_change(rig: PollRig) -> None:
    await first_cycle(rig)
    school = rig.stack.school
    current = rig.current_pupils()
    applicant = next(s["schoolId"] for s in school.all_students() if roll_of(s) == "applicants")
    edited, leaver, vanished = current[0], current[1], current[2]
    contact = next(c for c in school.all_contacts() if c["schoolId"] == current[3])
    employee = school.all_employees()[0]["id"]
    await rig.control("POST", f"/edit/student/{applicant}", {"systemStatus": "Current"})
    await rig.control("POST", f"/edit/student/{edited}", {"preferredName": "Polly"})
    left = await rig.control("POST", f"/leave/student/{leaver}", {"leavingDate": "2026-12-01"})
    await rig.control("POST", f"/delete/student/{vanished}")
    await rig.control("POST", f"/delete/contact/{contact['id']}")
    await rig.control("POST", f"/edit/staff/{employee}", {"schoolMobileNumber": "07700 900123"})

    report = await rig.cycle()

    changes = {(c.type, c.event.record_id): c for c in await rig.published()}
    applicant_contacts = {("contact.updated", str(c["id"])) for c in school.contacts_of(applicant)}
    assert (
        set(changes)
        == {
            ("student.updated", applicant),
            ("student.updated", edited),
            ("student.updated", leaver),
            ("student.deleted", vanished),
            ("contact.deleted", str(contact["id"])),
            ("staff.updated", str(employee)),
        }
        | applicant_contacts
    )
    alumnus = changes[("student.updated", leaver)].data.record
    assert alumnus is not None and alumnus["leavingDate"] == left["leavingDate"]
    assert changes[("contact.deleted", str(contact["id"]))].data.schoolId == current[3]
    staff = changes[("staff.updated", str(employee))].data.record
    assert staff is not None and staff["schoolMobileNumber"] == "07700 900123"
    assert report.ok and not report.held
    assert report.published[("alumni", "changed")] == 1


async def test_poll_to_managebac_end_to_end(rig: PollRig) -> None:
    stack = rig.stack
    await stack.start_consumer()
    first = await rig.cycle()
    await stack.wait_for_results(first.published_total(), timeout=90)
    synced = await stack.managebac_students()
    expected = {
        s["schoolCode"]
        for s in stack.school.all_students()
        if roll_of(s) == "current" and s.get("yearGroup") in YEAR_GROUPS
    }
    assert {code for code, s in synced.items() if not s["archived"]} == expected
    current = [s for s in stack.school.all_students() if s.get("schoolCode") in expected]
    renamed, leaver = current[0], current[1]
    await rig.control("POST", f"/edit/student/{renamed['schoolId']}", {"preferredName": "Polly"})
    await rig.control("POST", f"/leave/student/{leaver['schoolId']}", {"leavingDate": "2026-12-01"})
    applied = len(stack.results)

    second = await rig.cycle()

    assert second.published_total() == 2, second.summary()
    await stack.wait_for_results(applied + 2, timeout=60)
    students = await stack.managebac_students()
    assert students[renamed["schoolCode"]]["nickname"] == "Polly"
    assert students[leaver["schoolCode"]]["archived"] is True
    assert students[leaver["schoolCode"]].get("withdrawn_on") == "2026-12-01"


async def test_the_guard_holds_an_emptied_export_until_forced(rig: PollRig) -> None:
    stack = rig.stack
    await stack.start_consumer()
    first = await rig.cycle()
    await stack.wait_for_results(first.published_total(), timeout=90)
    before = await stack.managebac_state()
    pupils = rig.current_pupils()
    gone = pupils[: len(pupils) // 2]
    for school_id in gone:
        await rig.control("POST", f"/delete/student/{school_id}")

    held = await rig.cycle()

    assert held.guard_held and not held.failed, held.summary()
    assert held.held_on("students") == len(gone)
    assert "--force" in held.guard_reasons[0]
    assert [c for c in await rig.published() if c.type == "student.deleted"] == []
    row = await rig.services.ledger.get(SCHOOL, "poll", "students")
    assert row is not None and row.status is Status.PENDING
    assert row.reason is not None and "--force" in row.reason
    again = await rig.cycle()
    assert again.guard_held and await rig.published() == []  # judged again: still held
    assert (await stack.managebac_state())["students"] == before["students"]

    applied = len(stack.results)
    forced = await rig.cycle(force=True)

    deleted = kinds(await rig.published())
    assert deleted == {("student.deleted", school_id) for school_id in gone}
    assert not forced.guard_held
    await stack.wait_for_results(applied + len(gone), timeout=60)
    students = await stack.managebac_students()
    archived = {code for code, s in students.items() if s["archived"]}
    synced_gone = {  # ManageBac+'s identifier is iSAMS's schoolId
        s["student_id"]
        for s in before["students"]
        if not s["archived"] and s.get("identifier") in set(gone)
    }
    assert synced_gone and synced_gone <= archived
    after = await rig.cycle()
    assert not after.held and await rig.published() == []  # released once


async def test_a_lost_permission_holds_that_lists_removals_while_the_rest_flows(
    rig: PollRig,
) -> None:
    await first_cycle(rig)
    school = rig.stack.school
    pupil = rig.current_pupils()[0]
    contact = next(c for c in school.all_contacts() if c["schoolId"] == rig.current_pupils()[1])
    await rig.control("PUT", "/permissions", {"contacts": False})
    await rig.control("POST", f"/delete/contact/{contact['id']}")
    await rig.control("POST", f"/edit/student/{pupil}", {"preferredName": "Polly"})

    blocked = await rig.cycle()

    assert kinds(await rig.published()) == {("student.updated", pupil)}
    assert blocked.failed["contacts"].refusal == "forbidden"
    assert NOT_AUTHORISED in blocked.failed["contacts"].message
    assert blocked.held_on("contacts") >= 1 and not blocked.guard_held
    row = await rig.services.ledger.get(SCHOOL, "poll", "contacts")
    assert row is not None and row.status is Status.FAILED
    assert row.reason is not None and NOT_AUTHORISED in row.reason
    students_row = await rig.services.ledger.get(SCHOOL, "poll", "students")
    assert students_row is not None and students_row.status is Status.SYNCED

    await rig.control("PUT", "/permissions", {"contacts": True})
    restored = await rig.cycle()

    assert kinds(await rig.published()) == {("contact.deleted", str(contact["id"]))}
    assert restored.ok
    row = await rig.services.ledger.get(SCHOOL, "poll", "contacts")
    assert row is not None and row.status is Status.SYNCED


async def test_a_throttle_and_transient_500s_are_survived(rig: PollRig) -> None:
    await rig.control("PUT", "/throttle", {"limit": 2, "windowSeconds": 2})
    await rig.control("PUT", "/faults", {"errorRate": 0.3, "failNext": 2})
    started = datetime.now(UTC)

    report = await rig.cycle()

    assert report.ok, report.summary()
    assert len(await rig.published()) == rig.listed_records()
    stats = await rig.control("GET", "/stats")
    assert stats["throttled"] >= 1 and stats["serverErrors"] >= 2
    assert report.isams_requests > 4 + stats["throttled"]  # the refused ones were retried
    assert (datetime.now(UTC) - started).total_seconds() < 60
