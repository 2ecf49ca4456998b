"""Students on the fakes: created, updated field by field, archived when they leave and
restored when they return, skipped with the reason, never duplicated, never set back by an
older event (docs/design.md §3 "Students")."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from consumers.domain.records import Status
from consumers.outcomes import Outcome, PermanentFailureError, TransientFailureError
from consumers.ports import IsamsUnavailableError, ManagebacUnavailableError
from tests.fakes import YEAR_GROUPS, FakeSync
from tests.unit.sync.records import T1, T2, a_student


def with_pupil(**fields: object) -> FakeSync:
    sync = FakeSync()
    sync.isams.add_student(a_student("S1", **fields))
    return sync


@pytest.mark.parametrize("fat", [False, True], ids=["thin", "fat"])
async def test_a_new_pupil_is_created_with_the_mapped_fields(fat: bool) -> None:
    sync = with_pupil(middlenames="Augusta", preferredName="Addie", mobileNumber="07700 900123")

    result = await sync.process(sync.student_event("S1", fat=fat))

    assert result.outcome is Outcome.CREATED
    student = sync.managebac.student("C-S1")
    assert student.fields == {
        "first_name": "Ada",
        "middle_name": "Augusta",
        "last_name": "Lovelace",
        "nickname": "Addie",
        "birthday": "2014-12-10",
        "gender": "Female",
        "year_group_id": YEAR_GROUPS[7],
        "email": "s1@school.example",
        "mobile_phone_number": "07700 900123",
        "identifier": "S1",
        "student_id": "C-S1",
        "attendance_start_date": "2024-09-01",
    }
    assert student.archived is False
    assert sync.managebac.writes == [("create", "students", None)]  # one request: no lookup first
    assert sync.managebac.lookups == []
    row = sync.ledger.row("student", "S1")
    assert (row.status, row.managebac_id, row.reason) == (Status.SYNCED, student.id, None)
    assert "attendance_start_date" not in row.pushed  # sent on creation only
    assert row.source_updated_at == "2026-11-01T09:00:00"


async def test_a_fat_event_needs_no_isams_read_of_the_pupil_and_a_thin_one_reads_it_once() -> None:
    sync = with_pupil()
    await sync.process(sync.student_event("S1", fat=True))
    assert sync.isams.reads("student") == 0

    await sync.process(sync.student_event("S1"))
    assert sync.isams.reads("student") == 1


async def test_an_update_writes_only_the_fields_that_changed() -> None:
    sync = with_pupil(mobileNumber="07700 900123")
    await sync.process(sync.student_event("S1"))
    student_id = sync.managebac.student("C-S1").id
    mark = len(sync.managebac.requests)
    sync.isams.update_student("S1", forename="Augusta", mobileNumber=None, lastUpdated=T1)

    result = await sync.process(sync.student_event("S1"))

    assert result.outcome is Outcome.UPDATED
    assert sync.managebac.writes_since(mark) == [("update", "students", student_id)]
    assert sync.managebac.requests[-1].body == {"first_name": "Augusta", "mobile_phone_number": ""}
    student = sync.managebac.student("C-S1")
    assert student.fields["first_name"] == "Augusta"
    assert "mobile_phone_number" not in student.fields  # cleared: emptied in iSAMS
    assert sync.ledger.row("student", "S1").pushed["first_name"] == "Augusta"


@pytest.mark.parametrize("fat", [False, True], ids=["thin", "fat"])
async def test_an_unchanged_pupil_makes_no_write(fat: bool) -> None:
    sync = with_pupil()
    await sync.process(sync.student_event("S1"))
    mark = len(sync.managebac.requests)

    result = await sync.process(sync.student_event("S1", fat=fat))

    assert result.outcome is Outcome.UNCHANGED
    assert result.wrote is False
    assert sync.managebac.writes_since(mark) == []
    assert sync.ledger.row("student", "S1").status is Status.SYNCED


async def test_a_placeholder_email_is_sent_until_isams_has_one() -> None:
    sync = with_pupil(schoolEmailAddress=None)
    await sync.process(sync.student_event("S1"))
    assert sync.managebac.student("C-S1").fields["email"] == "C-S1@placeholder.invalid"
    assert any("placeholder" in w for w in sync.ledger.row("student", "S1").warnings)

    sync.isams.update_student("S1", schoolEmailAddress="ada@school.example", lastUpdated=T1)
    await sync.process(sync.student_event("S1"))

    assert sync.managebac.student("C-S1").fields["email"] == "ada@school.example"
    assert sync.ledger.row("student", "S1").warnings == ()


@pytest.mark.parametrize("fat", [False, True], ids=["thin", "fat"])
async def test_a_leaver_is_archived_withdrawn_on_their_leaving_date(fat: bool) -> None:
    sync = with_pupil()
    await sync.process(sync.student_event("S1"))
    student_id = sync.managebac.student("C-S1").id
    sync.isams.leave("S1", on=date(2026, 12, 18), lastUpdated=T1)

    result = await sync.process(sync.student_event("S1", fat=fat))

    assert result.outcome is Outcome.ARCHIVED
    student = sync.managebac.student("C-S1")
    assert student.archived is True
    assert student.fields["withdrawn_on"] == "2026-12-18"
    assert sync.managebac.sent("archive", "students") == [{"withdrawn_on": "2026-12-18"}]
    row = sync.ledger.row("student", "S1")
    assert (row.status, row.archived, row.managebac_id) == (Status.ARCHIVED, True, student_id)
    assert row.reason == "archived: not current in iSAMS"


async def test_a_pupil_deleted_in_isams_is_archived_withdrawn_today() -> None:
    sync = with_pupil()
    await sync.process(sync.student_event("S1"))
    sync.isams.remove_student("S1")

    result = await sync.process(sync.student_event("S1", action="deleted"))

    assert result.outcome is Outcome.ARCHIVED
    today = datetime.now(UTC).date().isoformat()
    assert sync.managebac.student("C-S1").fields["withdrawn_on"] == today
    assert sync.ledger.row("student", "S1").reason == "archived: deleted in iSAMS"


async def test_a_pupil_who_returns_is_unarchived_and_their_year_group_written_again() -> None:
    sync = with_pupil()
    await sync.process(sync.student_event("S1"))
    student_id = sync.managebac.student("C-S1").id
    sync.isams.leave("S1", on=date(2026, 12, 18), lastUpdated=T1)
    await sync.process(sync.student_event("S1"))
    assert "year_group_id" not in sync.managebac.student("C-S1").fields  # archiving took it
    mark = len(sync.managebac.requests)
    sync.isams.come_back("S1", yearGroup=8, lastUpdated=T2)

    result = await sync.process(sync.student_event("S1"))

    assert result.outcome is Outcome.UNARCHIVED
    assert sync.managebac.writes_since(mark) == [
        ("unarchive", "students", student_id),
        ("update", "students", student_id),
    ]
    student = sync.managebac.student("C-S1")
    assert student.archived is False
    assert student.fields["year_group_id"] == YEAR_GROUPS[8]
    assert sync.managebac.requests[-1].body["first_name"] == "Ada"  # the whole state again
    assert "attendance_start_date" not in sync.managebac.requests[-1].body
    row = sync.ledger.row("student", "S1")
    assert (row.status, row.archived, row.reason) == (Status.SYNCED, False, None)


async def test_a_pupil_whose_year_is_not_mapped_is_skipped_with_the_reason() -> None:
    sync = with_pupil(yearGroup=5)

    result = await sync.process(sync.student_event("S1"))

    assert result.outcome is Outcome.SKIPPED
    assert result.reason == "yearGroup 5 is not in mappings.year_groups"
    assert sync.managebac.writes == []
    row = sync.ledger.row("student", "S1")
    assert (row.status, row.reason, row.managebac_id) == (Status.SKIPPED, result.reason, None)


async def test_a_pupil_without_names_is_skipped_naming_what_is_missing() -> None:
    sync = with_pupil(forename="", surname=None)

    result = await sync.process(sync.student_event("S1"))

    assert result.reason == "missing in iSAMS: forename, surname"
    assert sync.managebac.writes == []
    assert sync.ledger.row("student", "S1").status is Status.SKIPPED


async def test_a_redelivered_older_fat_event_is_stale_and_changes_nothing() -> None:
    sync = with_pupil()
    older = sync.student_event("S1", fat=True)
    sync.isams.update_student("S1", forename="Augusta", lastUpdated=T1)
    await sync.process(sync.student_event("S1", fat=True))
    mark = len(sync.managebac.requests)
    before = sync.ledger.row("student", "S1")

    result = await sync.process(older)

    assert result.outcome is Outcome.STALE
    assert sync.managebac.writes_since(mark) == []
    assert sync.managebac.student("C-S1").fields["first_name"] == "Augusta"
    assert sync.ledger.row("student", "S1") == before


async def test_an_older_fat_event_does_not_archive_a_pupil_who_came_back() -> None:
    sync = with_pupil()
    await sync.process(sync.student_event("S1", fat=True))
    sync.isams.leave("S1", on=date(2026, 12, 18), lastUpdated=T1)
    left = sync.student_event("S1", fat=True)
    sync.isams.come_back("S1", lastUpdated=T2)
    await sync.process(sync.student_event("S1", fat=True))

    result = await sync.process(left)  # a retry of the leaving, after the return

    assert result.outcome is Outcome.STALE
    assert sync.managebac.student("C-S1").archived is False


async def test_a_pupil_managebac_already_has_is_adopted_not_duplicated() -> None:
    sync = with_pupil()
    existing = sync.managebac.seed(
        "students", student_id="C-S1", email="old@school.example", last_name="Old"
    )

    result = await sync.process(sync.student_event("S1"))

    assert result.outcome is Outcome.ADOPTED
    accepted = [r for r in sync.managebac.requests if not r.refused]
    assert [(r.method, r.id) for r in accepted] == [("update", existing.id)]
    student = sync.managebac.student("C-S1")  # still exactly one
    assert student.id == existing.id
    assert student.fields["last_name"] == "Lovelace"
    assert student.fields["email"] == "s1@school.example"
    assert "attendance_start_date" not in student.fields  # never sent to an adopted student
    assert sync.ledger.row("student", "S1").managebac_id == existing.id


async def test_an_archived_pupil_managebac_already_has_is_unarchived_when_adopted() -> None:
    sync = with_pupil()
    existing = sync.managebac.seed(
        "students", archived=True, student_id="C-S1", email="s1@school.example", last_name="X"
    )

    result = await sync.process(sync.student_event("S1"))

    assert result.outcome is Outcome.ADOPTED
    assert sync.managebac.user("students", existing.id).archived is False
    assert len(sync.managebac.accounts["students"]) == 1


async def test_an_email_taken_by_someone_else_is_dead_lettered_not_duplicated() -> None:
    sync = with_pupil()
    sync.managebac.seed("teachers", email="S1@school.example", last_name="Someone")

    with pytest.raises(PermanentFailureError) as refused:
        await sync.process(sync.student_event("S1"))

    assert refused.value.error_class == "managebac-rejected"
    assert "has already been taken" in refused.value.detail
    assert sync.managebac.accounts["students"] == {}
    assert sync.ledger.rows == {}


async def test_managebac_unavailable_is_transient_and_records_nothing() -> None:
    sync = with_pupil()
    sync.managebac.failing = ManagebacUnavailableError("gave up after retries: 503")

    with pytest.raises(TransientFailureError):
        await sync.process(sync.student_event("S1"))
    assert sync.ledger.rows == {}

    sync.managebac.failing = None
    assert (await sync.process(sync.student_event("S1"))).outcome is Outcome.CREATED


async def test_isams_unavailable_is_transient() -> None:
    sync = with_pupil()
    sync.isams.failing = IsamsUnavailableError("iSAMS GET /api/students/S1: 503")

    with pytest.raises(TransientFailureError):
        await sync.process(sync.student_event("S1"))
    assert sync.managebac.writes == []


async def test_a_change_for_a_school_not_in_the_schools_file_is_dead_lettered() -> None:
    sync = with_pupil()
    change = sync.change("student.updated", {"schoolId": "S1"}, school_id="another-school")

    with pytest.raises(PermanentFailureError) as refused:
        await sync.process(change)

    assert refused.value.error_class == "unknown-school"
    assert sync.managebac.writes == []
