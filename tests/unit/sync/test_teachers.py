"""Teachers on the fakes: synced while the iSAMS user has ManageBac+ access, archived when
it is revoked (or left alone with `on_access_revoked: ignore`) and when they leave, matched
by e-mail (docs/design.md §3 "Teachers" and "Precise semantics")."""

from __future__ import annotations

import pytest

from consumers.domain.records import Status
from consumers.domain.teachers import (
    ACCESS_REVOKED_IGNORED,
    ACCESS_UNKNOWN,
    NO_ACCESS,
    STAFF_DISABLED,
)
from consumers.outcomes import Outcome
from tests.fakes import FakeSync, FakeUser, school_settings
from tests.unit.sync.records import an_employee

EMAIL = "teacher17@school.example"


def with_teacher(**staff: object) -> FakeSync:
    sync = FakeSync(school_settings(staff=staff))
    sync.isams.add_employee(an_employee(17))
    return sync


def the_teacher(sync: FakeSync) -> FakeUser:
    (found,) = sync.managebac.with_email("teachers", EMAIL)
    return found


@pytest.mark.parametrize("fat", [False, True], ids=["thin", "fat"])
async def test_access_granted_creates_the_teacher(fat: bool) -> None:
    sync = with_teacher()

    result = await sync.process(sync.staff_event(17, access=True, fat=fat))

    assert result.outcome is Outcome.CREATED
    teacher = the_teacher(sync)
    assert teacher.fields == {
        "first_name": "Alan",
        "last_name": "Turing",
        "gender": "Male",
        "email": EMAIL,
    }
    assert sync.managebac.writes == [("create", "teachers", None)]
    row = sync.ledger.row("staff", "17")
    assert (row.status, row.managebac_id, row.source.access) == (Status.SYNCED, teacher.id, True)
    assert sync.isams.reads("employee") == (0 if fat else 1)


async def test_access_revoked_archives_the_teacher() -> None:
    sync = with_teacher()
    await sync.process(sync.staff_event(17, access=True))
    teacher = the_teacher(sync)

    result = await sync.process(sync.staff_event(17, access=False))

    assert result.outcome is Outcome.ARCHIVED
    assert teacher.archived is True
    assert sync.managebac.sent("archive", "teachers") == [{}]  # teachers take no date
    row = sync.ledger.row("staff", "17")
    assert (row.status, row.reason) == (
        Status.ARCHIVED,
        "archived: ManageBac+ access revoked in iSAMS",
    )
    assert row.source.access is False


async def test_access_revoked_with_on_access_revoked_ignore_leaves_the_teacher_as_is() -> None:
    sync = with_teacher(on_access_revoked="ignore")
    await sync.process(sync.staff_event(17, access=True))
    teacher = the_teacher(sync)
    mark = len(sync.managebac.requests)
    sync.isams.update_employee(17, surname="Turing-Smith")

    result = await sync.process(sync.staff_event(17, access=False))

    assert result.outcome is Outcome.SKIPPED
    assert result.reason == ACCESS_REVOKED_IGNORED
    assert sync.managebac.writes_since(mark) == []  # not archived, and no field updates
    assert teacher.archived is False
    assert teacher.fields["last_name"] == "Turing"
    row = sync.ledger.row("staff", "17")
    assert (row.status, row.managebac_id, row.reason) == (
        Status.SYNCED,
        teacher.id,
        ACCESS_REVOKED_IGNORED,
    )


async def test_access_granted_again_unarchives_and_rewrites_the_teacher() -> None:
    sync = with_teacher()
    await sync.process(sync.staff_event(17, access=True))
    await sync.process(sync.staff_event(17, access=False))
    teacher = the_teacher(sync)
    mark = len(sync.managebac.requests)

    result = await sync.process(sync.staff_event(17, access=True))

    assert result.outcome is Outcome.UNARCHIVED
    assert teacher.archived is False
    assert sync.managebac.writes_since(mark) == [
        ("unarchive", "teachers", teacher.id),
        ("update", "teachers", teacher.id),
    ]
    assert len(sync.managebac.accounts["teachers"]) == 1
    assert sync.ledger.row("staff", "17").status is Status.SYNCED


async def test_an_event_without_access_keeps_the_last_known_access() -> None:
    sync = with_teacher()
    await sync.process(sync.staff_event(17, access=True))
    sync.isams.update_employee(17, surname="Turing-Smith")

    result = await sync.process(sync.staff_event(17))  # e.g. from the poller: no access known

    assert result.outcome is Outcome.UPDATED
    assert the_teacher(sync).fields["last_name"] == "Turing-Smith"
    assert sync.ledger.row("staff", "17").source.access is True


@pytest.mark.parametrize("fat", [False, True], ids=["thin", "fat"])
async def test_no_access_ever_known_skips_with_the_reason(fat: bool) -> None:
    sync = with_teacher()

    result = await sync.process(sync.staff_event(17, fat=fat))

    assert result.outcome is Outcome.SKIPPED
    assert result.reason == ACCESS_UNKNOWN
    assert sync.managebac.writes == []
    row = sync.ledger.row("staff", "17")
    assert (row.status, row.reason, row.source.access) == (Status.SKIPPED, ACCESS_UNKNOWN, None)


async def test_no_access_for_someone_never_synced_creates_nothing() -> None:
    sync = with_teacher()

    result = await sync.process(sync.staff_event(17, access=False))

    assert result.reason == NO_ACCESS
    assert sync.managebac.writes == []


@pytest.mark.parametrize("on_access_revoked", ["archive", "ignore"])
async def test_a_member_of_staff_who_leaves_is_archived_whatever_on_access_revoked_says(
    on_access_revoked: str,
) -> None:
    sync = with_teacher(on_access_revoked=on_access_revoked)
    await sync.process(sync.staff_event(17, access=True))
    sync.isams.update_employee(17, systemStatus="Left")

    result = await sync.process(sync.staff_event(17))

    assert result.outcome is Outcome.ARCHIVED
    assert the_teacher(sync).archived is True
    assert sync.ledger.row("staff", "17").reason == (
        "archived: left the school (not current in iSAMS)"
    )


async def test_a_member_of_staff_deleted_in_isams_is_archived() -> None:
    sync = with_teacher()
    await sync.process(sync.staff_event(17, access=True))
    del sync.isams.employees["17"]

    result = await sync.process(sync.staff_event(17, action="deleted"))

    assert result.outcome is Outcome.ARCHIVED
    assert the_teacher(sync).archived is True
    assert sync.ledger.row("staff", "17").reason == "archived: deleted in iSAMS"


async def test_a_teacher_managebac_already_has_is_adopted_by_email_ignoring_case() -> None:
    sync = with_teacher()
    existing = sync.managebac.seed("teachers", email=EMAIL.upper(), last_name="B", archived=True)

    result = await sync.process(sync.staff_event(17, access=True))

    assert result.outcome is Outcome.ADOPTED
    accepted = [r for r in sync.managebac.requests if not r.refused]
    assert [(r.method, r.id) for r in accepted] == [
        ("unarchive", existing.id),
        ("update", existing.id),
    ]
    assert existing.archived is False
    assert existing.fields["last_name"] == "Turing"
    assert len(sync.managebac.accounts["teachers"]) == 1
    assert sync.ledger.row("staff", "17").managebac_id == existing.id


async def test_staff_without_a_school_email_are_skipped_with_the_reason() -> None:
    sync = with_teacher()
    sync.isams.update_employee(17, schoolEmailAddress=None)

    result = await sync.process(sync.staff_event(17, access=True))

    assert result.reason == "missing in iSAMS: schoolEmailAddress"
    assert sync.managebac.writes == []


async def test_staff_sync_switched_off_writes_nothing() -> None:
    sync = with_teacher(enabled=False)

    result = await sync.process(sync.staff_event(17, access=True))

    assert result.reason == STAFF_DISABLED
    assert sync.managebac.writes == []


async def test_a_redelivered_older_fat_staff_event_is_stale() -> None:
    """Employees carry no lastUpdated: the event's timestamp is their version."""
    sync = with_teacher()
    granted = sync.staff_event(17, access=True, fat=True)
    await sync.process(granted)
    await sync.process(sync.staff_event(17, access=False, fat=True))

    result = await sync.process(granted)

    assert result.outcome is Outcome.STALE
    assert the_teacher(sync).archived is True
