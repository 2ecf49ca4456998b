"""A backfill's plan (its dry run) on the fakes: what the consumers would do with each change,
planned against the ledger, reading nothing from ManageBac+ and writing nothing anywhere."""

from __future__ import annotations

from consumers.capture.backfill import run_backfill
from consumers.capture.plan_report import Act, RunPlan
from consumers.settings import Topics
from tests.fakes import FakePublisher, FakeSync
from tests.unit.capture.test_reconcile import PUPILS, synced_school
from tests.unit.sync.records import a_contact, a_student, an_employee


async def dry_run(sync: FakeSync, force: bool = False) -> RunPlan:
    publisher = FakePublisher()
    rows, lookups, writes = (
        dict(sync.ledger.rows),
        len(sync.managebac.lookups),
        len(sync.managebac.requests),
    )
    report = await run_backfill(
        sync.school.ports(),
        sync.ledger,
        publisher,
        Topics.with_prefix(""),
        dry_run=True,
        force=force,
    )
    assert publisher.published == []
    assert len(sync.managebac.requests) == writes
    assert len(sync.managebac.lookups) == lookups  # ManageBac+ is not read
    new = {key: row for key, row in sync.ledger.rows.items() if key not in rows}
    assert [row.kind for row in new.values()] == ["backfill"]
    assert {key: sync.ledger.rows[key] for key in rows} == rows
    assert report.plan is not None
    return report.plan


async def test_a_first_sync_plans_every_creation_and_link() -> None:
    sync = FakeSync()
    for number in (1, 2):
        sync.isams.add_student(a_student(f"S{number}"))
    sync.isams.add_contact(a_contact(31, "S1", "P1"))
    sync.isams.add_contact(a_contact(32, "S2", "P1"))
    sync.isams.add_student(a_student("S3", yearGroup=12))  # not mapped
    sync.isams.add_employee(an_employee(17))  # access unknown: no staff event yet

    plan = await dry_run(sync)

    shown = {(item.kind, item.isams_id, item.action) for item in plan.items}
    assert shown == {
        ("student", "S1", Act.CREATE),
        ("student", "S2", Act.CREATE),
        ("student", "S3", Act.SKIP),
        ("parent", "p1-guid", Act.CREATE),
        ("link", "p1-guid → S1", Act.LINK),
        ("link", "p1-guid → S2", Act.LINK),
        ("teacher", "17", Act.SKIP),
    }
    assert sync.managebac.requests == []


async def test_after_a_sync_the_plan_has_only_what_changed_in_isams() -> None:
    sync = await synced_school()
    sync.isams.update_student("S4", forename="Augusta")
    sync.isams.remove_student("S12")

    plan = await dry_run(sync)

    assert {(item.isams_id, item.action) for item in plan.items} == {
        ("S4", Act.UPDATE),
        ("S12", Act.ARCHIVE),
    }
    assert plan.totals()["student"] == {"update": 1, "archive": 1, "unchanged": PUPILS - 2}


async def test_removals_the_guard_stops_are_held_in_the_plan() -> None:
    sync = await synced_school()
    for number in range(1, PUPILS // 2 + 1):
        sync.isams.remove_student(f"S{number}")

    held = await dry_run(sync)
    forced = await dry_run(sync, force=True)

    assert {item.action for item in held.items if item.kind == "student"} == {Act.HELD}
    assert {item.action for item in forced.items if item.kind == "student"} == {Act.ARCHIVE}
