"""A refused ManageBac+ token pauses the school, on the real broker (docs/design.md §4).

A disabled token (401) or a missing right (403): the school's affected changes wait on the
retry topic, nothing is dead-lettered, `isams_sync_school_blocked` and `explain` say why,
and once the token works the changes flow again on their own.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from prometheus_client import REGISTRY

from consumers.adapters.kafka.dlq import list_dead_letters
from consumers.adapters.ledger import Ledger
from consumers.ops.explain import explain_record
from tests.integration.sync_stack import SCHOOL, TOKEN, Stack
from tests.integration.test_sync_end_to_end import _current_mapped_student

pytestmark = pytest.mark.kafka


def blocked_gauge(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "isams_sync_school_blocked", {"school": SCHOOL, "reason": reason}
    )
    return value or 0.0


async def set_token(stack: Stack, **change: Any) -> None:
    response = await stack.managebac.put(f"/_sim/tokens/{TOKEN}", json=change)
    assert response.status_code == 200, response.text


async def wait_until(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.1)


def outcomes(stack: Stack) -> list[str]:
    return [result.outcome.value for result in stack.results]


async def explained(stack: Stack, kind: str, isams_id: str) -> str:
    ledger = Ledger.from_url(stack.settings.database_url)
    try:
        return await explain_record(ledger, SCHOOL, kind, isams_id)
    finally:
        await ledger.close()


async def test_a_disabled_token_pauses_the_school_until_it_works_again(stack: Stack) -> None:
    record = _current_mapped_student(stack.school)
    await stack.start_consumer()
    await set_token(stack, enabled=False)

    response = await stack.emitter.send(stack.emitter.student_event(record["schoolId"]))
    assert response.status_code == 202
    await wait_until(lambda: _true(outcomes(stack).count("waiting") >= 2))
    assert record["schoolCode"] not in await stack.managebac_students()
    assert blocked_gauge("token_refused") == 1
    text = await explained(stack, "student", record["schoolId"])
    assert "school blocked: ManageBac+ the token was refused (401)" in text
    assert await list_dead_letters(stack.settings.kafka, stack.settings.topics) == []

    enabled_at = time.monotonic()
    await set_token(stack, enabled=True)
    await wait_until(lambda: _has(stack, record["schoolCode"]))
    assert time.monotonic() - enabled_at < 120  # docs/design.md §4: within 2 minutes
    assert blocked_gauge("token_refused") == 0
    assert "school blocked" not in await explained(stack, "student", record["schoolId"])
    assert "dead_lettered" not in outcomes(stack)


async def test_a_missing_right_holds_only_the_changes_that_need_it(stack: Stack) -> None:
    record = _current_mapped_student(stack.school)
    employee = next(
        e
        for e in stack.school.all_employees()
        if str(e.get("systemStatus")).lower() == "current" and e.get("schoolEmailAddress")
    )
    await set_token(stack, revoke=["teachers/create"])
    await stack.start_consumer()

    staff = stack.emitter.staff_event(employee["id"], "updated", True, True)
    student = stack.emitter.student_event(record["schoolId"])
    for event in (staff, student):
        assert (await stack.emitter.send(event)).status_code == 202
    await wait_until(lambda: _has(stack, record["schoolCode"]))  # students still flow
    await wait_until(lambda: _true("waiting" in outcomes(stack)))
    teachers = (await stack.managebac_state())["teachers"]
    assert employee["schoolEmailAddress"] not in {t["email"] for t in teachers}
    assert blocked_gauge("missing_rights") == 1
    text = await explained(stack, "staff", str(employee["id"]))
    assert "teachers/create" in text  # the missing right is named

    await set_token(stack, grant=["teachers/create"])
    await wait_until(lambda: _teacher(stack, employee["schoolEmailAddress"]))
    assert blocked_gauge("missing_rights") == 0
    assert "dead_lettered" not in outcomes(stack)


async def _true(value: bool) -> bool:
    return value


async def _has(stack: Stack, student_id: str) -> bool:
    return student_id in await stack.managebac_students()


async def _teacher(stack: Stack, email: str) -> bool:
    return email in {t["email"] for t in (await stack.managebac_state())["teachers"]}
