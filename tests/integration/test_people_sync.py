"""Parents and teachers end to end on real parts: siblings sharing parents, every event
order, a teacher's access revoked, and adoption of users ManageBac+ already has."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sim.isams.school import SchoolData
from tests.integration.sync_stack import YEAR_GROUPS, Stack

pytestmark = pytest.mark.kafka


def _current_mapped(record: dict[str, Any]) -> bool:
    return str(record.get("systemStatus", "")).lower() == "current" and (
        record.get("yearGroup") in YEAR_GROUPS
    )


def family(school: SchoolData) -> tuple[list[str], dict[str, Any]]:
    """Two current siblings and a parent person (mapped type, e-mail) they share."""
    for group in school.sibling_groups():
        students = [school.student(sid) for sid in group[:2]]
        if len(students) < 2 or not all(_current_mapped(s) for s in students):
            continue
        first, second = (school.contacts_of(s["schoolId"]) for s in students)
        shared = {c.get("personGuid") for c in second}
        for contact in first:
            mapped = contact.get("contactType") in ("Parents", "Guardian")
            if mapped and contact.get("emailAddress") and contact["personGuid"] in shared:
                return [s["schoolId"] for s in students], contact
    raise AssertionError("the generated school has no family with a shared parent")


def contacts_of_person(school: SchoolData, guid: str) -> list[dict[str, Any]]:
    return [c for c in school.all_contacts() if c.get("personGuid") == guid]


async def send_one(stack: Stack, event: dict[str, Any]) -> None:
    """Send one event and wait until the consumer has finished it."""
    done = len(stack.results)
    response = await stack.emitter.send(event)
    assert response.status_code == 202
    await stack.wait_for_results(done + 1)


def parents_with_email(state: dict[str, Any], email: str) -> list[dict[str, Any]]:
    return [p for p in state["parents"] if p["email"].casefold() == email.casefold()]


def links_of(state: dict[str, Any], parent_id: int) -> dict[int, str]:
    return {
        link["child_id"]: link["relationship"]
        for link in state["links"]
        if link["parent_id"] == parent_id
    }


async def assert_family_synced(stack: Stack, siblings: list[str], parent: dict[str, Any]) -> None:
    state = await stack.managebac_state()
    found = parents_with_email(state, parent["emailAddress"])
    assert len(found) == 1, "exactly one ManageBac+ parent for the person"
    assert found[0]["last_name"] == parent["surname"]
    assert found[0]["archived"] is False
    students = {s["identifier"]: s["id"] for s in state["students"]}
    links = links_of(state, found[0]["id"])
    for sid in siblings:
        assert students[sid] in links, f"parent not linked to student {sid}"
    contacts = {c["schoolId"]: c for c in contacts_of_person(stack.school, parent["personGuid"])}
    for sid in siblings:
        expected = contacts[sid]["relationship"]
        assert links[students[sid]] in (expected, "Other Guardian")


async def test_siblings_share_one_parent_linked_to_both(stack: Stack) -> None:
    siblings, parent = family(stack.school)
    await stack.start_consumer()
    for sid in siblings:
        await send_one(stack, stack.emitter.student_event(sid))
    await assert_family_synced(stack, siblings, parent)


ORDERS: dict[str, list[str]] = {
    "contacts before students": ["c0", "c1", "s0", "s1"],
    "students before contacts": ["s0", "s1", "c0", "c1"],
    "interleaved": ["c0", "s1", "c1", "s0"],
    "one student, its contact, then the rest": ["s0", "c1", "c0", "s1"],
}


@pytest.mark.parametrize("order", ORDERS.values(), ids=list(ORDERS))
async def test_the_family_syncs_whichever_order_events_arrive(
    stack: Stack, order: list[str]
) -> None:
    siblings, parent = family(stack.school)
    contact_ids = {
        c["schoolId"]: c["id"] for c in contacts_of_person(stack.school, parent["personGuid"])
    }
    # Thin events: the consumer reads each record from iSAMS when it gets to it.
    events: dict[str, dict[str, Any]] = {}
    for index, sid in enumerate(siblings):
        events[f"s{index}"] = stack.thin_emitter.student_event(sid)
        events[f"c{index}"] = stack.thin_emitter.contact_event(contact_ids[sid], "updated", False)
    await stack.start_consumer()
    for name in order:
        await send_one(stack, events[name])
    await assert_family_synced(stack, siblings, parent)


async def test_a_removed_contact_unlinks_and_a_parent_without_children_is_archived(
    stack: Stack,
) -> None:
    siblings, parent = family(stack.school)
    await stack.start_consumer()
    for sid in siblings:
        await send_one(stack, stack.emitter.student_event(sid))
    contacts = contacts_of_person(stack.school, parent["personGuid"])
    for contact in contacts:
        stack.school.remove_contact(contact["id"])
        await send_one(
            stack,
            stack.thin_emitter.contact_event(contact["id"], "deleted", False, contact["schoolId"]),
        )
    state = await stack.managebac_state()
    (found,) = parents_with_email(state, parent["emailAddress"])
    assert links_of(state, found["id"]) == {}
    assert found["archived"] is True


async def test_a_teachers_access_revoked_archives_and_granted_again_unarchives(
    stack: Stack,
) -> None:
    employee = next(
        e
        for e in stack.school.all_employees()
        if str(e.get("systemStatus")).lower() == "current" and e.get("schoolEmailAddress")
    )
    send: Callable[[bool], Awaitable[None]] = lambda access: send_one(  # noqa: E731
        stack, stack.emitter.staff_event(employee["id"], "updated", True, access)
    )
    await stack.start_consumer()

    await send(True)
    (teacher,) = [
        t
        for t in (await stack.managebac_state())["teachers"]
        if t["email"] == employee["schoolEmailAddress"]
    ]
    assert teacher["archived"] is False
    assert teacher["last_name"] == employee["surname"]

    await send(False)
    teachers = {t["id"]: t for t in (await stack.managebac_state())["teachers"]}
    assert teachers[teacher["id"]]["archived"] is True

    await send(True)
    teachers = {t["id"]: t for t in (await stack.managebac_state())["teachers"]}
    assert teachers[teacher["id"]]["archived"] is False
    assert len(teachers) == 1


async def test_users_managebac_already_has_are_adopted_not_duplicated(stack: Stack) -> None:
    siblings, parent = family(stack.school)
    student = stack.school.student(siblings[0])
    employee = next(
        e
        for e in stack.school.all_employees()
        if str(e.get("systemStatus")).lower() == "current" and e.get("schoolEmailAddress")
    )
    seeded = await stack.managebac.post(
        "/_sim/seed",
        json={
            "students": [
                {
                    "student_id": student["schoolCode"],
                    "email": "old.address@school.example",
                    "first_name": "Old",
                    "last_name": "Name",
                }
            ],
            "parents": [
                {"email": parent["emailAddress"].upper(), "first_name": "X", "last_name": "Y"}
            ],
            "teachers": [
                {"email": employee["schoolEmailAddress"], "first_name": "A", "last_name": "B"}
            ],
        },
    )
    assert seeded.status_code == 201, seeded.text
    existing = {kind: seeded.json()[kind][0]["id"] for kind in ("students", "parents", "teachers")}

    await stack.start_consumer()
    for sid in siblings:
        await send_one(stack, stack.emitter.student_event(sid))
    await send_one(stack, stack.emitter.staff_event(employee["id"], "updated", True, True))

    state = await stack.managebac_state()
    student_ids = Counter(s["student_id"] for s in state["students"])
    assert student_ids[student["schoolCode"]] == 1
    (adopted,) = [s for s in state["students"] if s["student_id"] == student["schoolCode"]]
    assert adopted["id"] == existing["students"]
    assert adopted["last_name"] == student["surname"]
    assert "attendance_start_date" not in adopted
    (adopted_parent,) = parents_with_email(state, parent["emailAddress"])
    assert adopted_parent["id"] == existing["parents"]
    assert adopted_parent["last_name"] == parent["surname"]
    (teacher,) = [t for t in state["teachers"] if t["email"] == employee["schoolEmailAddress"]]
    assert teacher["id"] == existing["teachers"]
    assert teacher["last_name"] == employee["surname"]
