"""Reconcile on the fakes (docs/design.md §6): each kind of drift in ManageBac+ is repaired
with the one write it needs, iSAMS winning; what iSAMS no longer has is archived under the
removals guard; look-alikes are reported and left alone; nothing to do writes nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from consumers.capture.plan_report import Act, PlanItem
from consumers.capture.reconcile import RUN_KIND, ReconcileError, ReconcileReport, run_reconcile
from consumers.domain.drift import SAME_EMAIL, SAME_NAMES_AND_BIRTHDAY
from consumers.domain.records import SourceState, Status, SyncRecord
from consumers.outcomes import Outcome
from consumers.ports import ManagebacUnavailableError
from tests.fakes import FakeSync, FakeUser, school_settings
from tests.unit.sync.records import a_contact, a_student, an_employee

PUPILS = 12  # one pupil of twelve is 8%: within the guard's 10%
MOTHER = "p1-guid"


async def synced_school(pupils: int = PUPILS, **settings: Any) -> FakeSync:
    """A school synced through the change path: pupils S1…Sn, S1 and S2 sharing their mother
    (contacts 31, 32), S3's father (33), and a teacher (17) with ManageBac+ access."""
    sync = FakeSync(school_settings(**settings))
    for number in range(1, pupils + 1):
        sync.isams.add_student(a_student(f"S{number}"))
    sync.isams.add_contact(a_contact(31, "S1", "P1"))
    sync.isams.add_contact(a_contact(32, "S2", "P1"))
    sync.isams.add_contact(a_contact(33, "S3", "P3", relationship="Father", forename="Tom"))
    sync.isams.add_employee(an_employee(17))
    await sync.process_all([sync.student_event(f"S{n}") for n in range(1, pupils + 1)])
    await sync.process(sync.staff_event(17, access=True))
    return sync


async def reconcile(sync: FakeSync, dry_run: bool = False, force: bool = False) -> ReconcileReport:
    return await run_reconcile(sync.school.ports(), sync.ledger, dry_run=dry_run, force=force)


async def assert_settled(sync: FakeSync) -> None:
    """A second reconcile finds nothing, and the change path, diffing against the ledger the
    run left, writes nothing either for any pupil or the teacher."""
    mark = len(sync.managebac.requests)
    again = await reconcile(sync, force=True)
    assert again.plan.writes() == 0, again.plan.items
    changes = [sync.student_event(sid) for sid in [*sync.isams.students, *sync.isams.alumni]]
    results = await sync.process_all([*changes, sync.staff_event(17)])
    assert sync.managebac.writes_since(mark) == []
    assert {result.outcome for result in results} <= {Outcome.UNCHANGED, Outcome.SKIPPED}


def rows(sync: FakeSync) -> dict[tuple[str, str, str], SyncRecord]:
    """The ledger's rows but the run records."""
    return {key: row for key, row in sync.ledger.rows.items() if row.kind != RUN_KIND}


def items(report: ReconcileReport, action: Act | None = None) -> list[PlanItem]:
    return [item for item in report.plan.items if action is None or item.action is action]


def parent(sync: FakeSync, email: str = "p1@family.example") -> FakeUser:
    (found,) = sync.managebac.with_email("parents", email)
    return found


async def test_nothing_to_do_writes_nothing_anywhere() -> None:
    sync = await synced_school()
    before, mark = rows(sync), len(sync.managebac.requests)

    report = await reconcile(sync)

    assert sync.managebac.writes_since(mark) == []
    assert rows(sync) == before
    assert report.plan.writes() == 0
    assert report.plan.unchanged == {"student": PUPILS, "parent": 2, "teacher": 1, "link": 3}
    assert not report.held and report.failures == 0 and report.duplicates == []
    (run,) = [row for row in sync.ledger.rows.values() if row.kind == RUN_KIND]
    assert (run.isams_id, run.status) == (report.run_id, Status.SYNCED)


async def test_a_field_edited_in_managebac_is_written_back_alone() -> None:
    sync = await synced_school()
    student = sync.managebac.student("C-S4")
    student.fields["first_name"] = "Augusta"
    mark = len(sync.managebac.requests)

    report = await reconcile(sync)

    assert sync.managebac.writes_since(mark) == [("update", "students", student.id)]
    assert sync.managebac.requests[-1].body == {"first_name": "Ada"}
    (item,) = items(report)
    assert (item.kind, item.isams_id, item.action) == ("student", "S4", Act.UPDATE)
    assert [(c.name, c.before, c.after) for c in item.changes] == [("first_name", "A…", "A…")]
    await assert_settled(sync)


async def test_a_wrong_year_group_is_moved_back() -> None:
    sync = await synced_school()
    student = sync.managebac.student("C-S5")
    student.fields["year_group_id"] = 1009

    report = await reconcile(sync)

    assert student.fields["year_group_id"] == 1007
    (item,) = items(report)
    assert [change.name for change in item.changes] == ["year_group_id"]
    await assert_settled(sync)


async def test_archived_in_managebac_but_current_in_isams_is_unarchived_and_rewritten() -> None:
    sync = await synced_school()
    student = sync.managebac.student("C-S6")
    await sync.managebac.archive("students", student.id, {"withdrawn_on": "2026-11-30"})
    mark = len(sync.managebac.requests)

    report = await reconcile(sync)

    assert student.archived is False
    assert student.fields["year_group_id"] == 1007  # archiving had taken it away
    assert sync.managebac.writes_since(mark) == [
        ("unarchive", "students", student.id),
        ("update", "students", student.id),
    ]
    (item,) = items(report)
    assert (item.action, item.reason) == (
        Act.UNARCHIVE,
        "archived in ManageBac+ but current in iSAMS",
    )
    assert [change.name for change in item.changes] == ["year_group_id"]
    assert sync.ledger.row("student", "S6").archived is False
    await assert_settled(sync)


async def test_a_link_deleted_in_managebac_is_made_again() -> None:
    sync = await synced_school()
    mother, student = parent(sync), sync.managebac.student("C-S2")
    await sync.managebac.unlink_child(mother.id, student.id)
    mark = len(sync.managebac.requests)

    report = await reconcile(sync)

    assert sync.managebac.children_of(mother.id)[student.id] == "Mother"
    assert sync.managebac.writes_since(mark) == [("link_child", "parents", mother.id)]
    (item,) = items(report)
    assert (item.kind, item.isams_id, item.action) == ("link", f"{MOTHER} → S2", Act.LINK)
    await assert_settled(sync)


async def test_a_changed_relationship_in_managebac_is_relinked() -> None:
    sync = await synced_school()
    mother, student = parent(sync), sync.managebac.student("C-S1")
    sync.managebac.links[(mother.id, student.id)] = "Aunt"

    report = await reconcile(sync)

    assert sync.managebac.links[(mother.id, student.id)] == "Mother"
    (item,) = items(report)
    assert item.action is Act.RELINK
    assert [(c.before, c.after) for c in item.changes] == [("Aunt", "Mother")]
    await assert_settled(sync)


async def test_an_extra_link_between_managed_users_is_removed_and_others_are_left() -> None:
    sync = await synced_school()
    mother = parent(sync)
    extra, outsider = sync.managebac.student("C-S7"), sync.managebac.seed("students", email="x@y.z")
    sync.managebac.links[(mother.id, extra.id)] = "Mother"
    sync.managebac.links[(mother.id, outsider.id)] = (
        "Aunt"  # a student this service does not manage
    )

    report = await reconcile(sync)

    assert sync.managebac.children_of(mother.id) == {
        sync.managebac.student("C-S1").id: "Mother",
        sync.managebac.student("C-S2").id: "Mother",
        outsider.id: "Aunt",
    }
    (item,) = items(report)
    assert (item.isams_id, item.action) == (f"{MOTHER} → S7", Act.UNLINK)
    await assert_settled(sync)


async def test_a_user_isams_no_longer_has_is_archived_within_the_guard() -> None:
    sync = await synced_school()
    student = sync.managebac.student("C-S8")
    sync.isams.remove_student("S8")

    report = await reconcile(sync)

    assert student.archived is True
    today = datetime.now(UTC).date().isoformat()
    assert sync.managebac.sent("archive", "students")[-1] == {"withdrawn_on": today}
    (item,) = items(report)
    assert (item.action, item.reason) == (
        Act.ARCHIVE,
        "no longer in iSAMS (neither on roll nor a leaver)",
    )
    assert (report.removals, report.synced, report.held) == (1, PUPILS + 1, False)
    assert sync.ledger.row("student", "S8").status is Status.ARCHIVED
    await assert_settled(sync)


async def test_a_teacher_isams_no_longer_has_is_archived_and_edits_are_repaired() -> None:
    sync = await synced_school()
    (teacher,) = sync.managebac.with_email("teachers", "teacher17@school.example")
    teacher.fields["last_name"] = "Touring"
    report = await reconcile(sync)
    assert teacher.fields["last_name"] == "Turing"
    assert [(i.kind, i.action) for i in items(report)] == [("teacher", Act.UPDATE)]

    del sync.isams.employees["17"]
    report = await reconcile(sync)

    assert teacher.archived is True
    assert [(i.kind, i.action) for i in items(report)] == [("teacher", Act.ARCHIVE)]


async def test_the_guard_holds_removals_when_half_the_pupils_vanish_until_forced() -> None:
    sync = await synced_school()
    gone = [f"S{n}" for n in range(1, PUPILS // 2 + 1)]
    for school_id in gone:
        sync.isams.remove_student(school_id)
    sync.managebac.student("C-S12").fields["first_name"] = "Dot"  # drift elsewhere
    mark = len(sync.managebac.requests)

    held = await reconcile(sync)

    assert held.held and "--force" in held.decision.reason
    assert {i.isams_id for i in items(held, Act.HELD)} == set(gone)
    assert all(not sync.managebac.student(f"C-{sid}").archived for sid in gone)
    assert parent(sync).archived is False  # its children are held, not gone
    assert (
        "update",
        "students",
        sync.managebac.student("C-S12").id,
    ) in sync.managebac.writes_since(mark)
    assert not any(method == "archive" for method, _, _ in sync.managebac.writes_since(mark))
    assert sync.ledger.row(RUN_KIND, held.run_id).status is Status.FAILED

    forced = await reconcile(sync, force=True)

    assert forced.decision.allowed and not forced.held
    assert {i.isams_id for i in items(forced, Act.ARCHIVE) if i.kind == "student"} == set(gone)
    assert all(sync.managebac.student(f"C-{sid}").archived for sid in gone)
    assert parent(sync).archived is True  # S1 and S2 were its only children (S3 the father's)
    assert {i.isams_id for i in items(forced) if i.kind == "parent"} == {MOTHER, "p3-guid"}
    assert items(await reconcile(sync)) == []
    await assert_settled(sync)


async def test_leavers_in_the_alumni_are_explained_and_archived_without_force() -> None:
    sync = await synced_school()
    for number in range(1, PUPILS // 2 + 1):
        sync.isams.leave(f"S{number}", on=date(2026, 7, 17))

    report = await reconcile(sync)

    assert report.decision.allowed and report.removals == 0
    assert sync.managebac.student("C-S1").archived is True
    assert sync.managebac.sent("archive", "students")[0] == {"withdrawn_on": "2026-07-17"}
    reasons = {i.reason for i in items(report, Act.ARCHIVE) if i.kind == "student"}
    assert reasons == {"not current in iSAMS (a leaver)"}
    again = await reconcile(sync)
    assert items(again) == []  # archived as they should be: unchanged, not listed as skips
    assert again.plan.unchanged["student"] == PUPILS
    await assert_settled(sync)


async def test_look_alikes_are_reported_and_never_touched() -> None:
    sync = await synced_school()
    namesake = sync.managebac.seed(
        "students",
        first_name="ada",
        last_name="LOVELACE",
        birthday="2014-12-10",
        email="a@x.example",
    )
    other = sync.managebac.seed("parents", last_name="Byron", email="P1@Family.Example")
    stranger = sync.managebac.seed(
        "students", first_name="Ada", last_name="Lovelace", email="s@x.y"
    )
    before = {user.id: dict(user.fields) for user in (namesake, other, stranger)}
    mark = len(sync.managebac.requests)

    report = await reconcile(sync)

    assert sync.managebac.writes_since(mark) == []
    assert {user.id: user.fields for user in (namesake, other, stranger)} == before
    found = {(d.kind, d.managebac_id, d.rule) for d in report.duplicates}
    assert found == {
        ("student", namesake.id, SAME_NAMES_AND_BIRTHDAY),
        ("parent", other.id, SAME_EMAIL),
    }
    duplicate = next(d for d in report.duplicates if d.kind == "parent")
    assert (duplicate.name, duplicate.email) == ("B…", "P…@F…")
    mother = sync.ledger.row("parent", MOTHER).managebac_id
    assert (duplicate.like_managebac_id, duplicate.like_isams_id) == (mother, MOTHER)


async def test_a_dry_run_writes_nothing_and_changes_no_row_but_says_what_it_would_do() -> None:
    sync = await synced_school()
    sync.managebac.student("C-S4").fields["first_name"] = "Augusta"
    sync.isams.add_student(a_student("S40"))
    sync.isams.add_contact(a_contact(34, "S40", "P40"))
    before, mark = rows(sync), len(sync.managebac.requests)

    report = await reconcile(sync, dry_run=True)

    assert sync.managebac.writes_since(mark) == []
    assert rows(sync) == before
    said = sync.ledger.row(RUN_KIND, report.run_id).reason or ""
    assert said.startswith(f"reconcile {report.run_id} (dry run): would write 4 repair(s)")
    shown = {(i.kind, i.isams_id, i.action) for i in items(report)}
    assert shown == {
        ("student", "S4", Act.UPDATE),
        ("student", "S40", Act.CREATE),
        ("parent", "p40-guid", Act.CREATE),
        ("link", "p40-guid → S40", Act.LINK),  # to users the run would create
    }
    assert report.plan.totals()["all"] == {"create": 2, "update": 1, "link": 1, "unchanged": 17}


async def test_what_iSAMS_has_and_managebac_lacks_is_created_with_its_links() -> None:  # noqa: N802
    sync = await synced_school()
    sync.isams.add_student(a_student("S40"))
    sync.isams.add_contact(a_contact(34, "S40", "P1"))  # the mother of S1 and S2 again

    report = await reconcile(sync)

    created = sync.managebac.student("C-S40")
    assert sync.managebac.children_of(parent(sync).id)[created.id] == "Mother"
    assert sync.ledger.row("student", "S40").managebac_id == created.id
    assert sync.ledger.row("contact", "34").status is Status.SYNCED
    assert [(i.kind, i.action) for i in items(report)] == [
        ("student", Act.CREATE),
        ("link", Act.LINK),
    ]
    assert (await reconcile(sync)).plan.writes() == 0


async def test_a_managebac_user_with_the_same_student_id_is_adopted_not_duplicated() -> None:
    sync = await synced_school()
    existing = sync.managebac.seed(
        "students",
        student_id="C-S40",
        first_name="Adda",
        last_name="Lovelace",
        email="old@x.example",
    )
    sync.isams.add_student(a_student("S40"))

    report = await reconcile(sync)

    assert (
        len(
            [
                u
                for u in sync.managebac.users_of("students")
                if u.fields.get("student_id") == "C-S40"
            ]
        )
        == 1
    )
    assert existing.fields["first_name"] == "Ada"
    assert "attendance_start_date" not in existing.fields  # creation only
    (item,) = items(report)
    assert (item.action, item.managebac_id, item.reason) == (
        Act.ADOPT,
        existing.id,
        "already in ManageBac+ (same student_id)",
    )
    assert sync.ledger.row("student", "S40").managebac_id == existing.id
    await assert_settled(sync)


async def test_a_managed_user_managebac_lost_is_created_again() -> None:
    sync = await synced_school()
    lost = sync.managebac.student("C-S9")
    del sync.managebac.accounts["students"][lost.id]

    report = await reconcile(sync)

    again = sync.managebac.student("C-S9")
    assert again.id != lost.id
    assert sync.ledger.row("student", "S9").managebac_id == again.id
    (item,) = items(report)
    assert item.action is Act.CREATE and "created again" in (item.reason or "")
    await assert_settled(sync)


async def test_the_ledger_follows_managebac_when_managebac_is_already_right() -> None:
    sync = await synced_school()
    key = ("unit-school", "student", "S3")
    stale = sync.ledger.rows[key]
    sync.ledger.rows[key] = replace(stale, pushed={**stale.pushed, "first_name": "Old"})
    mark = len(sync.managebac.requests)

    report = await reconcile(sync)

    assert sync.managebac.writes_since(mark) == []
    assert report.plan.writes() == 0
    assert sync.ledger.row("student", "S3").pushed == stale.pushed


async def test_values_the_school_added_and_email_case_are_no_drift() -> None:
    sync = await synced_school()
    student = sync.managebac.student("C-S10")
    student.fields["nickname"] = "Addie"  # iSAMS has none; this service never wrote one
    student.fields["email"] = student.fields["email"].upper()
    mark = len(sync.managebac.requests)

    report = await reconcile(sync)

    assert sync.managebac.writes_since(mark) == []
    assert report.plan.writes() == 0


async def test_links_come_with_the_parent_list_and_are_read_apart_only_when_it_lacks_them() -> None:
    sync = await synced_school()
    await reconcile(sync)
    assert sync.managebac.looked_up("children") == 0
    assert sync.managebac.looked_up("find_student") == 0
    assert sync.managebac.looked_up("find_by_email") == 0

    sync.managebac.parents_listed_with_children = False
    mother, student = parent(sync), sync.managebac.student("C-S2")
    await sync.managebac.unlink_child(mother.id, student.id)
    report = await reconcile(sync)

    assert sync.managebac.looked_up("children") == 2  # one per managed parent
    assert [i.action for i in items(report)] == [Act.LINK]


async def test_a_refused_write_is_reported_and_the_other_repairs_go_on() -> None:
    sync = await synced_school()
    sync.managebac.student("C-S4").fields["first_name"] = "Augusta"
    taken = sync.managebac.student("C-S5")
    taken.fields["email"] = "someone@else.example"
    sync.managebac.seed("teachers", email="s5@school.example")  # holds S5's address now

    report = await reconcile(sync)

    assert sync.managebac.student("C-S4").fields["first_name"] == "Ada"
    (failed,) = report.plan.failures
    assert failed.isams_id == "S5"
    assert failed.error == "ManageBac+ refused it (422: email has already been taken)"
    assert sync.ledger.row(RUN_KIND, report.run_id).status is Status.FAILED
    assert report.plan.totals()["student"]["failed"] == 1


async def test_managebac_not_answering_stops_the_run_and_records_why() -> None:
    sync = await synced_school()
    sync.managebac.failing = ManagebacUnavailableError("gave up after retries: 503")

    with pytest.raises(ReconcileError, match="ManageBac\\+ did not answer") as stopped:
        await reconcile(sync)

    (run,) = [row for row in sync.ledger.rows.values() if row.kind == RUN_KIND]
    assert run.status is Status.FAILED and run.reason == str(stopped.value)


async def test_access_revoked_since_the_last_run_archives_the_teacher() -> None:
    sync = await synced_school()
    key = ("unit-school", "staff", "17")
    row = sync.ledger.rows[key]
    sync.ledger.rows[key] = replace(row, source=SourceState(access=False))
    (teacher,) = sync.managebac.with_email("teachers", "teacher17@school.example")

    report = await reconcile(sync)

    assert teacher.archived is True
    (item,) = items(report)
    assert (item.action, item.reason) == (Act.ARCHIVE, "ManageBac+ access revoked in iSAMS")
    await assert_settled(sync)


async def test_with_staff_sync_off_teachers_are_neither_read_nor_touched() -> None:
    sync = await synced_school(staff={"enabled": False})
    sync.managebac.lookups.clear()

    report = await reconcile(sync)

    assert ("users", "teachers", "") not in sync.managebac.lookups
    assert report.plan.unchanged.get("teacher", 0) == 0 and report.plan.writes() == 0


async def test_a_joint_contacts_second_person_is_managed_not_removed() -> None:
    """A joint contact is two parents on the change path; reconcile sees the same two."""
    sync = await synced_school()
    sync.isams.update_contact(
        33,
        secondaryPersonId=904,
        secondaryPersonGuid="P4-GUID",
        relationshipOfJointContact="Mother",
        secondaryForename="Ann",
        secondarySurname="Lovelace",
        secondaryEmailAddress="p4@family.example",
    )
    await sync.process(sync.student_event("S3"))
    assert len(sync.managebac.with_email("parents", "p4@family.example")) == 1

    report = await reconcile(sync)

    assert report.plan.writes() == 0, report.plan.items
    assert not parent(sync, "p4@family.example").archived
    await assert_settled(sync)


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "live"])
async def test_staff_access_comes_from_the_schools_rule_as_on_the_change_path(
    dry_run: bool,
) -> None:
    """With `staff.access_from: all_current` no staff event ever says "access": the reconcile
    (and the backfill's plan, the same code) must still give every current employee access,
    as `consume` does, not skip them as "access unknown"."""
    sync = await synced_school(staff={"access_from": "all_current"})
    sync.isams.add_employee(an_employee(18, surname="Hopper"))  # never a staff event
    report = await reconcile(sync, dry_run=dry_run)
    (item,) = [i for i in items(report) if i.kind == "teacher"]
    assert (item.action, item.isams_id) == (Act.CREATE, "18")
    created = sync.managebac.with_email("teachers", "teacher18@school.example")
    assert len(created) == (0 if dry_run else 1)
