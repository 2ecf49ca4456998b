"""An older version delivered after the current one changes nothing, for every kind.

A sender's retry or a replay can bring a fat event whose record is older than the one
already applied. Each test runs a stream on the real broker: the record's first version,
other records' changes, the current version, then the first version again (the
redelivery), and checks that ManageBac+ ends with the current version's values.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.sync_stack import Stack
from tests.integration.test_people_sync import family, parents_with_email
from tests.integration.test_sync_end_to_end import _current_mapped_student

pytestmark = pytest.mark.kafka


async def send_stream(stack: Stack, events: list[dict[str, Any]]) -> None:
    """Send events one request each, in order, and wait until the consumer finished all."""
    done = len(stack.results)
    for event in events:
        response = await stack.emitter.send(event)
        assert response.status_code == 202, response.text
    await stack.wait_for_results(done + len(events), timeout=60)


def others(stack: Stack, skip: str, count: int = 3) -> list[dict[str, Any]]:
    """Changes of other students, mixed into the stream."""
    ids = [sid for sid in stack.school.students if sid != skip][:count]
    return [stack.emitter.student_event(sid) for sid in ids]


async def test_a_redelivered_older_student_changes_nothing(stack: Stack) -> None:
    record = _current_mapped_student(stack.school)
    sid = record["schoolId"]
    first = stack.emitter.student_event(sid)
    stack.school.edit_student(sid, {"mobileNumber": "07700 900555", "surname": "Newname"})
    current = stack.emitter.student_event(sid)
    await stack.start_consumer()

    mixed = others(stack, sid)
    await send_stream(stack, [first, *mixed[:1], current, *mixed[1:], first])

    student = (await stack.managebac_students())[record["schoolCode"]]
    assert student["mobile_phone_number"] == "07700 900555"
    assert student["last_name"] == "Newname"
    assert "stale" in [r.outcome.value for r in stack.results]


async def test_a_redelivered_older_contact_does_not_put_old_details_back_on_the_parent(
    stack: Stack,
) -> None:
    siblings, parent = family(stack.school)
    contact_id = parent["id"]
    await stack.start_consumer()
    await send_stream(stack, [stack.emitter.student_event(sid) for sid in siblings])
    first = stack.emitter.contact_event(contact_id)
    stack.school.edit_contact(contact_id, {"mobileNumber": "07700 900777", "forename": "Renamed"})
    current = stack.emitter.contact_event(contact_id)

    mixed = others(stack, siblings[0])
    await send_stream(stack, [first, *mixed[:1], current, *mixed[1:], first])

    (found,) = parents_with_email(await stack.managebac_state(), parent["emailAddress"])
    assert found["mobile_phone_number"] == "07700 900777"
    assert found["first_name"] == "Renamed"
    assert "stale" in [r.outcome.value for r in stack.results]


async def test_a_redelivered_older_staff_record_changes_nothing(stack: Stack) -> None:
    employee = next(
        e
        for e in stack.school.all_employees()
        if str(e.get("systemStatus")).lower() == "current" and e.get("schoolEmailAddress")
    )
    eid = employee["id"]
    first = stack.emitter.staff_event(eid, "updated", True, True)
    # iSAMS gives employees no lastUpdated: their versions are the events' timestamps, which
    # have millisecond precision, so the two versions are made a few milliseconds apart.
    await asyncio.sleep(0.01)
    stack.school.edit_employee(eid, {"surname": "Newname", "personalTelephoneNumber": "01632 1"})
    current = stack.emitter.staff_event(eid, "updated", True, True)
    await stack.start_consumer()

    mixed = others(stack, "")
    await send_stream(stack, [first, *mixed[:1], current, *mixed[1:], first])

    (teacher,) = [
        t
        for t in (await stack.managebac_state())["teachers"]
        if t["email"] == employee["schoolEmailAddress"]
    ]
    assert teacher["last_name"] == "Newname"
    assert teacher["phone_number"] == "01632 1"
    assert "stale" in [r.outcome.value for r in stack.results]
