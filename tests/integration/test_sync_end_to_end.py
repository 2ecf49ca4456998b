"""End to end on real parts: signed webhook → serve → Kafka → consumer → ManageBac+ simulator.

Everything runs in this process but talks over real sockets: the iSAMS and ManageBac+
simulators and the ingest app on uvicorn, the consumer on the real broker, the ledger on
SQLite.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from consumers.adapters.ledger import Ledger
from consumers.domain.records import Status
from sim.isams.school import SchoolData
from tests.integration.sync_stack import SCHOOL, YEAR_GROUPS, Stack

pytestmark = pytest.mark.kafka


def _current_mapped_student(school: SchoolData) -> dict[str, Any]:
    for record in school.all_students():
        if (
            str(record.get("systemStatus", "")).lower() == "current"
            and record.get("yearGroup") in YEAR_GROUPS
            and record.get("schoolEmailAddress")
        ):
            return record
    raise AssertionError("the generated school has no current student in a mapped year")


async def test_a_signed_webhook_ends_as_the_right_managebac_student(stack: Stack) -> None:
    record = _current_mapped_student(stack.school)
    await stack.start_consumer()

    response = await stack.emitter.send(stack.emitter.student_event(record["schoolId"]))
    assert response.status_code == 202
    await stack.wait_for_results(1)

    student = (await stack.managebac_students())[record["schoolCode"]]
    assert student["first_name"] == record["forename"]
    assert student["last_name"] == record["surname"]
    assert student["email"] == record["schoolEmailAddress"]
    assert student["identifier"] == record["schoolId"]
    assert student["year_group_id"] == YEAR_GROUPS[record["yearGroup"]]
    assert student["birthday"] == record["dob"][:10]
    assert student["attendance_start_date"] == record["enrolmentDate"][:10]


async def test_an_event_accepted_while_the_consumer_is_down_is_applied_after_it_starts(
    stack: Stack,
) -> None:
    record = _current_mapped_student(stack.school)
    response = await stack.emitter.send(stack.emitter.student_event(record["schoolId"]))
    assert response.status_code == 202
    await asyncio.sleep(0.5)
    assert record["schoolCode"] not in await stack.managebac_students()

    await stack.start_consumer()
    await stack.wait_for_results(1)
    assert record["schoolCode"] in await stack.managebac_students()


async def test_a_thin_event_reads_the_record_from_isams_and_an_unchanged_one_writes_nothing(
    stack: Stack,
) -> None:
    record = _current_mapped_student(stack.school)
    await stack.start_consumer()
    await stack.thin_emitter.send(stack.thin_emitter.student_event(record["schoolId"]))
    await stack.wait_for_results(1)
    assert record["schoolCode"] in await stack.managebac_students()
    writes = await stack.managebac_writes()

    await stack.thin_emitter.send(stack.thin_emitter.student_event(record["schoolId"]))
    await stack.wait_for_results(2)
    assert stack.results[-1].outcome.value == "unchanged"
    assert await stack.managebac_writes() == writes

    stack.school.edit_student(record["schoolId"], {"mobileNumber": "+44 7700 900123"})
    await stack.thin_emitter.send(stack.thin_emitter.student_event(record["schoolId"]))
    await stack.wait_for_results(3)
    student = (await stack.managebac_students())[record["schoolCode"]]
    assert student["mobile_phone_number"] == "+44 7700 900123"
    assert await stack.managebac_writes() == writes + 1


async def test_a_leaver_is_archived_and_a_return_unarchives_with_the_year_group(
    stack: Stack,
) -> None:
    record = _current_mapped_student(stack.school)
    sid = record["schoolId"]
    await stack.start_consumer()
    await stack.thin_emitter.send(stack.thin_emitter.student_event(sid))
    await stack.wait_for_results(1)

    stack.school.edit_student(sid, {"systemStatus": "Leaver", "leavingDate": "2026-07-20T00:00:00"})
    await stack.thin_emitter.send(stack.thin_emitter.student_event(sid))
    await stack.wait_for_results(2)
    student = (await stack.managebac_students())[record["schoolCode"]]
    assert student["archived"] is True
    assert student["withdrawn_on"] == "2026-07-20"
    assert "year_group_id" not in student

    stack.school.edit_student(sid, {"systemStatus": "Current", "leavingDate": None})
    await stack.thin_emitter.send(stack.thin_emitter.student_event(sid))
    await stack.wait_for_results(3)
    student = (await stack.managebac_students())[record["schoolCode"]]
    assert student["archived"] is False
    assert student["year_group_id"] == YEAR_GROUPS[record["yearGroup"]]


async def test_a_student_in_an_unmapped_year_is_skipped_with_the_reason(
    stack: Stack, tmp_path: Path
) -> None:
    record = _current_mapped_student(stack.school)
    stack.school.edit_student(record["schoolId"], {"yearGroup": 4})
    await stack.start_consumer()
    await stack.emitter.send(stack.emitter.student_event(record["schoolId"]))
    await stack.wait_for_results(1)

    assert record["schoolCode"] not in await stack.managebac_students()
    ledger = Ledger.from_url(stack.settings.database_url)
    try:
        row = await ledger.get(SCHOOL, "student", record["schoolId"])
    finally:
        await ledger.close()
    assert row is not None
    assert row.status is Status.SKIPPED
    assert row.reason is not None and "4" in row.reason and "year_groups" in row.reason


async def test_an_older_version_arriving_after_a_skip_does_not_undo_it(stack: Stack) -> None:
    record = _current_mapped_student(stack.school)
    sid = record["schoolId"]
    older = stack.emitter.student_event(sid)  # current, as it was
    stack.school.edit_student(sid, {"systemStatus": "Leaver", "leavingDate": "2026-07-20"})
    newer = stack.emitter.student_event(sid)  # has left
    await stack.start_consumer()

    await stack.emitter.send(newer)
    await stack.wait_for_results(1)
    await stack.emitter.send(older)  # e.g. back from the retry topic
    await stack.wait_for_results(2)

    assert [r.outcome.value for r in stack.results] == ["skipped", "stale"]
    assert record["schoolCode"] not in await stack.managebac_students()
