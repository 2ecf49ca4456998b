"""Parents on the fakes: one ManageBac+ parent per person, linked to each child, whatever
order the events come in; unlinked, relinked and archived as iSAMS changes; never set
back by an older contact version (docs/design.md §3 "Parents" and "Precise semantics")."""

from __future__ import annotations

import asyncio
from datetime import date
from itertools import permutations

import pytest

from consumers.domain.parents import DECEASED
from consumers.domain.records import Status
from consumers.events import QueuedChange
from consumers.outcomes import Outcome
from consumers.sync.parents import PARENT_ARCHIVED
from tests.fakes import FakeSync, FakeUser
from tests.unit.sync.records import T1, T2, a_contact, a_student

MOTHER = "p1-guid"  # the person key: personGuid, lower-case
MOTHER_EMAIL = "p1@family.example"


def family() -> FakeSync:
    """Two siblings, S1 and S2, whose contact records 31 and 32 are one person: their mother."""
    sync = FakeSync()
    for school_id, contact_id in (("S1", 31), ("S2", 32)):
        sync.isams.add_student(a_student(school_id, schoolCode=f"C-{school_id}"))
        sync.isams.add_contact(a_contact(contact_id, school_id, "P1"))
    return sync


def the_parent(sync: FakeSync, email: str = MOTHER_EMAIL) -> FakeUser:
    """Return the one ManageBac+ parent with this e-mail; fail when there are none or two."""
    found = sync.managebac.with_email("parents", email)
    assert len(found) == 1, f"{len(found)} ManageBac+ parents with {email}"
    return found[0]


def children(sync: FakeSync, parent: FakeUser) -> dict[str, str]:
    """Return a parent's links as student_id -> relationship."""
    ids = {
        user.id: user.fields["student_id"] for user in sync.managebac.accounts["students"].values()
    }
    return {ids[child]: rel for child, rel in sync.managebac.children_of(parent.id).items()}


def family_events(sync: FakeSync, fat: bool) -> dict[str, QueuedChange]:
    return {
        "s1": sync.student_event("S1", fat=fat),
        "s2": sync.student_event("S2", fat=fat),
        "c1": sync.contact_event(31, "S1", fat=fat),
        "c2": sync.contact_event(32, "S2", fat=fat),
    }


def assert_family_synced(sync: FakeSync) -> None:
    parent = the_parent(sync)
    assert parent.archived is False
    assert parent.fields["last_name"] == "Lovelace"
    assert children(sync, parent) == {"C-S1": "Mother", "C-S2": "Mother"}
    assert sync.managebac.writes.count(("create", "parents", None)) == 1
    parent_row = sync.ledger.row("parent", MOTHER)
    assert (parent_row.status, parent_row.managebac_id) == (Status.SYNCED, parent.id)
    for contact_id in ("31", "32"):
        row = sync.ledger.row("contact", contact_id)
        assert (row.status, row.managebac_id, row.reason) == (Status.SYNCED, parent.id, None)
        assert row.source.link is not None and row.source.link.linked


ORDERS = list(permutations(("s1", "s2", "c1", "c2")))


@pytest.mark.parametrize("fat", [False, True], ids=["thin", "fat"])
@pytest.mark.parametrize("order", ORDERS, ids="-".join)
async def test_siblings_sharing_a_parent_get_one_parent_linked_to_both_in_any_order(
    order: tuple[str, ...], fat: bool
) -> None:
    sync = family()
    events = family_events(sync, fat)

    for name in order:
        await sync.process(events[name])

    assert_family_synced(sync)


@pytest.mark.parametrize("fat", [False, True], ids=["thin", "fat"])
@pytest.mark.parametrize("order", ORDERS, ids="-".join)
async def test_siblings_sharing_a_parent_get_one_parent_when_their_events_run_at_once(
    order: tuple[str, ...], fat: bool
) -> None:
    """The consumer keeps order per key only: the four keys run concurrently."""
    sync = family()
    events = family_events(sync, fat)

    await asyncio.gather(*(sync.process(events[name]) for name in order))

    assert_family_synced(sync)


async def test_the_familys_events_replayed_write_nothing() -> None:
    sync = family()
    events = family_events(sync, fat=False)
    await sync.process_all(list(events.values()))
    mark = len(sync.managebac.requests)

    results = await sync.process_all(list(events.values()))

    assert sync.managebac.writes_since(mark) == []
    assert {result.outcome for result in results} == {Outcome.UNCHANGED}


async def test_a_contact_before_its_student_waits_then_links_when_the_student_comes() -> None:
    sync = family()

    await sync.process(sync.contact_event(31, "S1"))

    assert sync.managebac.accounts["parents"] == {}  # no active child yet: no parent either
    row = sync.ledger.row("contact", "31")
    assert row.status is Status.PENDING
    assert row.reason == "the parent is not in ManageBac+ (see the parent's reason)"
    assert sync.ledger.row("parent", MOTHER).reason == (
        "none of this parent's children is active in ManageBac+"
    )

    await sync.process(sync.student_event("S1"))

    assert children(sync, the_parent(sync)) == {"C-S1": "Mother"}
    assert sync.ledger.row("contact", "31").status is Status.SYNCED


async def synced_family() -> FakeSync:
    sync = family()
    await sync.process_all(list(family_events(sync, fat=False).values()))
    assert_family_synced(sync)
    return sync


async def test_a_removed_contact_unlinks_and_a_parent_with_no_child_left_is_archived() -> None:
    sync = await synced_family()
    parent = the_parent(sync)

    sync.isams.remove_contact(31)
    await sync.process(sync.contact_event(31, "S1", action="deleted"))

    assert children(sync, parent) == {"C-S2": "Mother"}
    assert parent.archived is False
    row = sync.ledger.row("contact", "31")
    assert (row.status, row.reason, row.managebac_id) == (Status.SKIPPED, "removed in iSAMS", None)
    assert row.source.link is not None and not row.source.link.linked

    sync.isams.remove_contact(32)
    await sync.process(sync.contact_event(32, "S2", action="deleted"))

    assert children(sync, parent) == {}
    assert parent.archived is True
    parent_row = sync.ledger.row("parent", MOTHER)
    assert (parent_row.status, parent_row.reason) == (Status.ARCHIVED, PARENT_ARCHIVED)
    assert len(sync.managebac.accounts["parents"]) == 1


async def test_a_contact_gone_from_its_students_list_is_unlinked_by_the_students_event() -> None:
    sync = await synced_family()
    parent = the_parent(sync)
    sync.isams.remove_contact(31)

    await sync.process(sync.student_event("S1"))  # no contact event: iSAMS sends none

    assert children(sync, parent) == {"C-S2": "Mother"}
    assert sync.ledger.row("contact", "31").reason == "removed in iSAMS"


async def test_a_parent_whose_children_all_leave_is_archived_and_restored_on_a_return() -> None:
    sync = await synced_family()
    parent = the_parent(sync)

    sync.isams.leave("S1", on=date(2026, 12, 18), lastUpdated=T1)
    await sync.process(sync.student_event("S1"))
    assert parent.archived is False  # S2 is still active

    sync.isams.leave("S2", on=date(2026, 12, 18), lastUpdated=T1)
    await sync.process(sync.student_event("S2"))
    assert parent.archived is True
    assert sync.ledger.row("parent", MOTHER).status is Status.ARCHIVED

    sync.isams.come_back("S1", lastUpdated=T2)
    await sync.process(sync.student_event("S1"))
    assert parent.archived is False
    assert sync.ledger.row("parent", MOTHER).status is Status.SYNCED
    assert "C-S1" in children(sync, parent)


@pytest.mark.parametrize("fat", [False, True], ids=["thin", "fat"])
async def test_a_changed_relationship_relinks(fat: bool) -> None:
    sync = await synced_family()
    parent = the_parent(sync)
    student = sync.managebac.student("C-S1")
    mark = len(sync.managebac.requests)
    sync.isams.update_contact(31, relationship="Step-Mother", lastUpdated=T1)

    await sync.process(sync.contact_event(31, "S1", fat=fat))

    assert children(sync, parent) == {"C-S1": "Stepmother", "C-S2": "Mother"}
    assert sync.managebac.writes_since(mark) == [("relink_child", "parents", parent.id)]
    assert sync.managebac.requests[-1].body == {
        "child_id": student.id,
        "relationship": "Stepmother",
    }
    link = sync.ledger.row("contact", "31").source.link
    assert link is not None and (link.relationship, link.linked) == ("Stepmother", True)


async def test_changed_details_update_the_parent_with_the_changed_fields_only() -> None:
    sync = await synced_family()
    parent = the_parent(sync)
    mark = len(sync.managebac.requests)
    sync.isams.update_contact(31, mobileNumber="07700 900999", lastUpdated=T1)

    await sync.process(sync.contact_event(31, "S1"))

    assert sync.managebac.writes_since(mark) == [("update", "parents", parent.id)]
    assert sync.managebac.requests[-1].body == {"mobile_phone_number": "07700 900999"}


async def test_an_older_contact_version_redelivered_does_not_put_old_details_back() -> None:
    sync = await synced_family()
    parent = the_parent(sync)
    older = sync.contact_event(31, "S1", fat=True)
    sync.isams.update_contact(31, mobileNumber="07700 900999", lastUpdated=T1)
    await sync.process(sync.contact_event(31, "S1", fat=True))
    assert parent.fields["mobile_phone_number"] == "07700 900999"
    mark = len(sync.managebac.requests)

    result = await sync.process(older)

    assert result.outcome is Outcome.STALE
    assert parent.fields["mobile_phone_number"] == "07700 900999"
    assert sync.managebac.writes_since(mark) == []
    record = sync.ledger.row("contact", "31").source.record
    assert record is not None and record["mobileNumber"] == "07700 900999"


async def test_a_contact_whose_type_is_not_mapped_is_skipped_with_the_reason() -> None:
    sync = FakeSync()
    sync.isams.add_student(a_student("S1"))
    sync.isams.add_contact(a_contact(31, "S1", "P1", contactType="Emergency"))

    await sync.process(sync.student_event("S1"))
    await sync.process(sync.contact_event(31, "S1"))

    assert sync.managebac.accounts["parents"] == {}
    assert [w for w in sync.managebac.writes if w[1] == "parents"] == []
    unmapped = 'contactType "Emergency" is not in mappings.contact_types'
    row = sync.ledger.row("contact", "31")
    assert (row.status, row.reason) == (Status.SKIPPED, unmapped)
    parent_row = sync.ledger.row("parent", MOTHER)
    assert parent_row.status is Status.SKIPPED
    assert parent_row.reason is not None and parent_row.reason.endswith(unmapped)


async def test_a_contact_type_no_longer_mapped_unlinks_and_archives() -> None:
    sync = FakeSync()
    sync.isams.add_student(a_student("S1"))
    sync.isams.add_contact(a_contact(31, "S1", "P1"))
    await sync.process(sync.student_event("S1"))
    parent = the_parent(sync)
    sync.isams.update_contact(31, contactType="Emergency", lastUpdated=T1)

    await sync.process(sync.contact_event(31, "S1"))

    assert sync.managebac.children_of(parent.id) == {}
    assert parent.archived is True


async def test_a_deceased_contact_does_not_sync() -> None:
    sync = FakeSync()
    sync.isams.add_student(a_student("S1"))
    sync.isams.add_contact(a_contact(31, "S1", "P1", deceased=True))

    await sync.process(sync.student_event("S1"))
    await sync.process(sync.contact_event(31, "S1", fat=True))

    assert sync.managebac.accounts["parents"] == {}
    assert sync.managebac.links == {}
    row = sync.ledger.row("contact", "31")
    assert (row.status, row.reason) == (Status.SKIPPED, DECEASED)


async def test_a_contact_marked_deceased_later_is_unlinked_and_the_parent_archived() -> None:
    sync = FakeSync()
    sync.isams.add_student(a_student("S1"))
    sync.isams.add_contact(a_contact(31, "S1", "P1"))
    await sync.process(sync.student_event("S1"))
    parent = the_parent(sync)
    sync.isams.update_contact(31, deceased=True, lastUpdated=T1)

    await sync.process(sync.contact_event(31, "S1"))

    assert sync.managebac.children_of(parent.id) == {}
    assert parent.archived is True
    assert sync.ledger.row("contact", "31").reason == DECEASED


async def test_a_parent_managebac_already_has_is_adopted_by_email_ignoring_case() -> None:
    sync = family()
    existing = sync.managebac.seed(
        "parents", email=MOTHER_EMAIL.upper(), first_name="X", last_name="Y"
    )

    await sync.process_all(list(family_events(sync, fat=False).values()))

    assert the_parent(sync).id == existing.id
    assert existing.fields["last_name"] == "Lovelace"
    assert len(sync.managebac.accounts["parents"]) == 1
    assert all(
        r.id == existing.id
        for r in sync.managebac.requests
        if r.resource == "parents" and not r.refused
    )
    assert children(sync, existing) == {"C-S1": "Mother", "C-S2": "Mother"}


async def test_a_link_managebac_already_has_counts_as_linked() -> None:
    sync = FakeSync()
    sync.isams.add_student(a_student("S1"))
    sync.isams.add_contact(a_contact(31, "S1", "P1", relationship="Dad"))
    student = sync.managebac.seed("students", student_id="C-S1", email="s1@school.example")
    parent = sync.managebac.seed("parents", email=MOTHER_EMAIL, last_name="Lovelace")
    sync.managebac.links[(parent.id, student.id)] = "Other Guardian"

    await sync.process(sync.student_event("S1"))

    assert sync.managebac.children_of(parent.id) == {student.id: "Father"}
    assert sync.ledger.row("contact", "31").status is Status.SYNCED


async def test_a_parent_created_here_has_each_link_posted_first() -> None:
    """The account was made by this service, so the ledger saw every link it has: a new link
    is posted at once (one request), whichever contact event made the parent."""
    sync = family()
    await sync.process_all(list(family_events(sync, fat=False).values()))

    assert_family_synced(sync)
    assert sync.ledger.row("parent", MOTHER).source.made_here is True
    assert sync.managebac.link_hints == [True, True]


async def test_an_adopted_parent_has_its_links_written_with_put_first() -> None:
    """An adopted account may have links of its own (made by hand, or by the integration it
    replaces): those are written with PUT first, as the notes advise, now and later."""
    sync = family()
    sync.managebac.seed("parents", email=MOTHER_EMAIL, first_name="X", last_name="Y")
    await sync.process_all(list(family_events(sync, fat=False).values()))

    assert children(sync, the_parent(sync)) == {"C-S1": "Mother", "C-S2": "Mother"}
    assert sync.ledger.row("parent", MOTHER).source.made_here is False
    assert sync.managebac.link_hints == [False, False]
