"""A joint contact is two people on one iSAMS record: both sync as parents of the student,
the second with `relationshipOfJointContact`, each needing their own e-mail (docs/design.md
§3). The second person's fields other than ids and relationship are assumed names
(consumers/domain/isams.py, JOINT_PERSON_FIELDS)."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.domain.isams import contact_people, second_person_id
from consumers.domain.records import Status
from consumers.outcomes import Outcome
from tests.fakes import FakeSync
from tests.unit.sync.records import a_contact, a_student

JOINT: dict[str, Any] = {
    "relationship": "Father",
    "forename": "John",
    "secondaryPersonId": 902,
    "secondaryPersonGuid": "P2-GUID",
    "relationshipOfJointContact": "Mother",
    "secondaryTitle": "Mrs",
    "secondaryForename": "Mary",
    "secondarySurname": "Lovelace",
    "secondaryEmailAddress": "mary@family.example",
    "secondaryMobileNumber": "07700 900002",
}


def test_a_joint_record_is_two_people_and_a_plain_one_is_one() -> None:
    joint = a_contact(41, "S1", "P1", **JOINT)
    (first_id, first), (second_id, second) = contact_people("41", joint)
    assert (first_id, second_id) == ("41", second_person_id("41")) == ("41", "41/2")
    assert (first["personGuid"], first["forename"], first["relationship"]) == (
        "P1-guid",
        "John",
        "Father",
    )
    assert "secondaryEmailAddress" not in first
    assert (second["personGuid"], second["personId"], second["forename"]) == (
        "P2-GUID",
        902,
        "Mary",
    )
    assert (second["emailAddress"], second["relationship"]) == ("mary@family.example", "Mother")
    assert second["contactType"] == first["contactType"] and second["id"] == 41
    plain = a_contact(42, "S1", "P3", secondaryPersonGuid=None, secondaryPersonId=None)
    assert [person_id for person_id, _ in contact_people("42", plain)] == ["42"]


def family(**contact: Any) -> FakeSync:
    sync = FakeSync()
    sync.isams.add_student(a_student("S1"))
    sync.isams.add_contact(a_contact(41, "S1", "P1", emailAddress="john@family.example", **contact))
    return sync


def links(sync: FakeSync) -> dict[str, str]:
    """Each parent's e-mail -> its relationship to the one student."""
    found = {}
    for parent in sync.managebac.users_of("parents"):
        for relationship in sync.managebac.children_of(parent.id).values():
            found[parent.fields["email"]] = relationship
    return found


@pytest.mark.parametrize("fat", [False, True], ids=["thin", "fat"])
async def test_both_people_of_a_joint_contact_become_parents_of_the_student(fat: bool) -> None:
    sync = family(**JOINT)
    await sync.process(sync.student_event("S1"))
    await sync.process(sync.contact_event(41, "S1", fat=fat))

    assert links(sync) == {"john@family.example": "Father", "mary@family.example": "Mother"}
    assert len(sync.managebac.users_of("parents")) == 2
    second = sync.ledger.row("contact", "41/2")
    assert (second.status, second.person_key) == (Status.SYNCED, "p2-guid")


async def test_a_second_person_without_an_e_mail_is_skipped_and_the_first_syncs() -> None:
    sync = family(**{**JOINT, "secondaryEmailAddress": None})
    await sync.process(sync.student_event("S1"))

    assert links(sync) == {"john@family.example": "Father"}
    parent = sync.ledger.row("parent", "p2-guid")
    assert parent.status is Status.SKIPPED
    assert parent.reason is not None and "emailAddress" in parent.reason


async def test_a_record_no_longer_joint_unlinks_the_second_person() -> None:
    sync = family(**JOINT)
    await sync.process(sync.student_event("S1"))
    sync.isams.update_contact(41, secondaryPersonGuid=None, secondaryPersonId=None)

    result = await sync.process(sync.contact_event(41, "S1", fat=True))

    assert result.outcome is not Outcome.STALE
    assert links(sync) == {"john@family.example": "Father"}
    (mary,) = sync.managebac.with_email("parents", "mary@family.example")
    assert mary.archived  # no active child left
    assert sync.ledger.row("contact", "41/2").status is Status.SKIPPED


async def test_a_deleted_joint_contact_removes_both_people() -> None:
    sync = family(**JOINT)
    await sync.process(sync.student_event("S1"))
    sync.isams.remove_contact(41)

    await sync.process(sync.contact_event(41, "S1", action="deleted"))

    assert links(sync) == {}
    assert all(parent.archived for parent in sync.managebac.users_of("parents"))
