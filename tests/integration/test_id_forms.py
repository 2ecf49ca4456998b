"""Contact and staff ids as the iSAMS REST API gives them (JSON integers) and as text: both
go from the webhook to ManageBac+ on the real broker, and the ledger names them as text."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.adapters.ledger import Ledger
from consumers.domain.records import Status
from tests.integration.sync_stack import SCHOOL, Stack
from tests.integration.test_people_sync import family, parents_with_email, send_one

pytestmark = pytest.mark.kafka

FORMS = {"integer": int, "text": str}


def with_id(event: dict[str, Any], form: type) -> dict[str, Any]:
    data = {**event["data"], "id": form(event["data"]["id"])}
    return {**event, "data": data}


async def ledger_row(stack: Stack, kind: str, isams_id: str) -> Any:
    ledger = Ledger.from_url(stack.settings.database_url)
    try:
        return await ledger.get(SCHOOL, kind, isams_id)
    finally:
        await ledger.close()


@pytest.mark.parametrize("form", FORMS.values(), ids=list(FORMS))
async def test_a_contact_event_reaches_managebac_whatever_the_id_form(
    stack: Stack, form: type
) -> None:
    siblings, parent = family(stack.school)
    await stack.start_consumer()
    for sid in siblings:  # the students first, so the contact's parent has a child to link
        await send_one(stack, stack.thin_emitter.student_event(sid))
    stack.school.edit_contact(parent["id"], {"mobileNumber": "07700 900321"})
    event = with_id(stack.thin_emitter.contact_event(parent["id"], "updated", False), form)
    assert isinstance(event["data"]["id"], form)
    await send_one(stack, event)

    (found,) = parents_with_email(await stack.managebac_state(), parent["emailAddress"])
    assert found["mobile_phone_number"] == "07700 900321"
    row = await ledger_row(stack, "contact", str(parent["id"]))
    assert row is not None and row.status is Status.SYNCED


@pytest.mark.parametrize("form", FORMS.values(), ids=list(FORMS))
async def test_a_staff_event_reaches_managebac_whatever_the_id_form(
    stack: Stack, form: type
) -> None:
    employee = next(
        e
        for e in stack.school.all_employees()
        if str(e.get("systemStatus")).lower() == "current" and e.get("schoolEmailAddress")
    )
    await stack.start_consumer()
    event = with_id(stack.thin_emitter.staff_event(employee["id"], "updated", False, True), form)
    assert isinstance(event["data"]["id"], form)
    await send_one(stack, event)

    teachers = (await stack.managebac_state())["teachers"]
    assert [t["last_name"] for t in teachers if t["email"] == employee["schoolEmailAddress"]] == [
        employee["surname"]
    ]
    row = await ledger_row(stack, "staff", str(employee["id"]))
    assert row is not None and row.status is Status.SYNCED
