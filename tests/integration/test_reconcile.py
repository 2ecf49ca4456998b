"""Reconcile on real parts: the iSAMS and ManageBac+ simulators over HTTP, a SQLite ledger,
the real clients (and the real broker where a backfill is involved).

Drift made through ManageBac+'s own API (a field edited, a pupil archived, a link deleted)
is repaired until ManageBac+ is again the mapped iSAMS state; a second run finds nothing and
only reads; dry runs of reconcile and backfill only read (GET), publish nothing and change
no ledger row but their own run record; the guard holds a run after half the pupils vanish
from iSAMS, and --force releases it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import cli
from consumers.adapters.kafka.publisher import KafkaPublisher
from consumers.adapters.kafka.reader import read_to_end
from consumers.adapters.managebac import RetryPolicy
from consumers.bootstrap import school_ports
from consumers.capture.backfill import run_backfill
from consumers.capture.plan_report import Act
from consumers.capture.reconcile import RUN_KIND
from consumers.domain.drift import observed_fields
from consumers.domain.isams import IsamsStudent
from consumers.domain.students import MappedStudent, StudentRules, map_student
from consumers.settings import Topics
from tests.integration.reconcile_support import Sims, open_sims, schools_file, since
from tests.integration.sync_stack import SCHOOL, YEAR_GROUPS


@pytest.fixture
async def sims(tmp_path: Path) -> AsyncIterator[Sims]:
    """The simulators, first synced by a reconcile into an empty ManageBac+."""
    async with open_sims(tmp_path) as running:
        await running.grant_teachers_access()
        first = await running.reconcile()
        assert first.failures == 0, first.plan.failures
        assert {item.action for item in first.plan.items} >= {Act.CREATE, Act.LINK}
        yield running


def current_mapped(sims: Sims) -> dict[str, dict[str, Any]]:
    return {
        s["schoolCode"]: s
        for s in sims.school.all_students()
        if str(s.get("systemStatus")).lower() == "current" and s.get("yearGroup") in YEAR_GROUPS
    }


async def assert_managebac_is_the_mapped_isams_state(sims: Sims) -> None:
    """Each active student holds exactly the fields its iSAMS record (as the API sends it)
    maps to, and no other student is active."""
    rules = StudentRules(year_groups=YEAR_GROUPS, placeholder_email_domain="placeholder.invalid")
    ports = school_ports(sims.schools.schools[0], sims.http, RetryPolicy(attempts=2))
    expected = {
        str(record["schoolCode"]): record
        async for record in ports.isams.all_students()
        if record.get("yearGroup") in YEAR_GROUPS
    }
    state = await sims.state()
    active = {s["student_id"]: s for s in state["students"] if not s["archived"]}
    assert set(active) == set(expected) == set(current_mapped(sims))
    for code, record in expected.items():
        mapped = map_student(IsamsStudent.model_validate(record), rules)
        assert isinstance(mapped, MappedStudent)
        assert observed_fields("students", active[code]) == mapped.fields, code


async def test_drift_made_in_managebac_is_repaired_and_a_second_run_only_reads(sims: Sims) -> None:
    synced = await sims.people()
    await assert_managebac_is_the_mapped_isams_state(sims)
    state = await sims.state()
    first, second, third = sorted(
        (s for s in state["students"] if not s["archived"]), key=lambda s: s["id"]
    )[:3]
    parent = next(p for p in state["parents"] if p["child_ids"] and not p["archived"])
    teacher = next(t for t in state["teachers"] if not t["archived"])
    other_year = next(gid for gid in YEAR_GROUPS.values() if gid != second["year_group_id"])

    await sims.api("PATCH", f"/v2/students/{first['id']}", {"student": {"first_name": "Drift"}})
    await sims.api(
        "PATCH", f"/v2/students/{second['id']}", {"student": {"year_group_id": other_year}}
    )
    await sims.api("PUT", f"/v2/students/{third['id']}/archive", {"withdrawn_on": "2026-11-30"})
    await sims.api("DELETE", f"/v2/parents/{parent['id']}/children/{parent['child_ids'][0]}")
    await sims.api("PATCH", f"/v2/parents/{parent['id']}", {"parent": {"last_name": "Drift"}})
    await sims.api("PATCH", f"/v2/teachers/{teacher['id']}", {"teacher": {"first_name": "Drift"}})
    assert await sims.people() != synced

    report = await sims.reconcile()

    assert report.failures == 0, report.plan.failures
    done = {
        (item.kind, item.managebac_id, item.action)
        for item in report.plan.items
        if item.action is not Act.SKIP
    }
    assert done == {
        ("student", first["id"], Act.UPDATE),
        ("student", second["id"], Act.UPDATE),
        ("student", third["id"], Act.UNARCHIVE),
        ("parent", parent["id"], Act.UPDATE),
        ("teacher", teacher["id"], Act.UPDATE),
        ("link", parent["id"], Act.LINK),
    }
    assert await sims.people() == synced
    await assert_managebac_is_the_mapped_isams_state(sims)

    before, rows = await sims.requests(), await sims.rows()
    again = await sims.reconcile()

    made = since(before, await sims.requests())
    assert again.plan.writes() == 0
    assert made and all(route.startswith("GET ") for route in made), made
    assert "GET /v2/parents/{parent_id}/children" not in made  # the parent list carries them
    assert await sims.rows() == rows


async def test_a_pupil_iSAMS_no_longer_has_is_archived_and_leavers_too(sims: Sims) -> None:  # noqa: N802
    codes = sorted(current_mapped(sims))
    vanished, leaver = (
        next(s for s in sims.school.all_students() if s["schoolCode"] == code) for code in codes[:2]
    )
    del sims.school.students[vanished["schoolId"]]
    sims.school.leave(leaver["schoolId"])

    report = await sims.reconcile()

    archived = {
        item.isams_id: item.reason for item in report.plan.items if item.action is Act.ARCHIVE
    }
    assert archived.keys() >= {vanished["schoolId"], leaver["schoolId"]}
    assert report.removals == 1 and report.decision.allowed  # the leaver is explained
    state = {s["student_id"]: s for s in (await sims.state())["students"]}
    assert state[vanished["schoolCode"]]["archived"] and state[leaver["schoolCode"]]["archived"]
    await assert_managebac_is_the_mapped_isams_state(sims)


async def test_the_guard_holds_a_run_after_half_the_pupils_vanish_and_force_releases_it(
    sims: Sims,
) -> None:
    codes = sorted(current_mapped(sims))
    gone = {
        s["schoolId"]
        for s in sims.school.all_students()
        if s["schoolCode"] in codes[: len(codes) // 2]
    }
    for school_id in gone:
        del sims.school.students[school_id]
    before = await sims.requests()

    held = await sims.reconcile()

    assert held.held and "--force" in held.decision.reason
    assert {item.isams_id for item in held.plan.items if item.action is Act.HELD} == gone
    made = since(before, await sims.requests())
    assert not any("archive" in route for route in made), made
    run = await sims.ledger.get(SCHOOL, RUN_KIND, held.run_id)
    assert run is not None and run.reason is not None and "Removals held" in run.reason

    forced = await sims.reconcile(force=True)

    assert forced.decision.allowed and forced.failures == 0
    archived = {
        item.isams_id
        for item in forced.plan.items
        if item.action is Act.ARCHIVE and item.kind == "student"
    }
    assert archived == gone
    await assert_managebac_is_the_mapped_isams_state(sims)


@pytest.mark.kafka
async def test_a_dry_run_of_reconcile_and_of_backfill_only_reads_and_publishes_nothing(
    sims: Sims, kafka_bootstrap: str, topics: Topics
) -> None:
    state = await sims.state()
    gone = next(iter(current_mapped(sims).values()))
    del sims.school.students[gone["schoolId"]]
    student = next(
        s for s in state["students"] if not s["archived"] and s["student_id"] != gone["schoolCode"]
    )
    await sims.api("PATCH", f"/v2/students/{student['id']}", {"student": {"last_name": "Drift"}})
    people, rows, before = await sims.people(), await sims.rows(), await sims.requests()

    reconciled = await sims.reconcile(dry_run=True)
    publisher = KafkaPublisher(kafka_bootstrap)
    await publisher.start()
    try:
        ports = school_ports(sims.schools.schools[0], sims.http, RetryPolicy(attempts=2))
        backfilled = await run_backfill(ports, sims.ledger, publisher, topics, dry_run=True)
    finally:
        await publisher.stop()

    made = since(before, await sims.requests())
    assert made and all(route.startswith("GET ") for route in made), made
    assert await sims.people() == people
    assert await sims.rows() == rows
    assert await read_to_end(kafka_bootstrap, topics.changes, timeout=30) == []
    runs = {row.kind for row in await sims.ledger.records(SCHOOL)} - {r[0] for r in rows}
    assert runs == {RUN_KIND, "backfill"}
    actions = {(item.isams_id, item.action) for item in reconciled.plan.items}
    assert (gone["schoolId"], Act.ARCHIVE) in actions
    assert any(
        item.action is Act.UPDATE and item.managebac_id == student["id"]
        for item in reconciled.plan.items
    )
    assert backfilled.plan is not None and backfilled.queued == 0
    assert (gone["schoolId"], Act.ARCHIVE) in {
        (i.isams_id, i.action) for i in backfilled.plan.items
    }
    assert backfilled.plan.totals()["student"]["unchanged"] > 0


def _cli(sims: Sims, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    schools = tmp_path / "schools.yaml"
    isams_url = str(sims.schools.schools[0].isams.base_url)
    managebac_url = str(sims.schools.schools[0].managebac.base_url)
    schools.write_text(yaml.safe_dump(schools_file(isams_url, managebac_url)), encoding="utf-8")
    env = {
        "SYNC_SCHOOLS_FILE": str(schools),
        "SYNC_DATABASE_URL": sims.database_url,
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(cli, ["reconcile", "--school", SCHOOL, *args], env=env)
    return result.exit_code, result.stdout, result.output


async def test_the_command_exits_0_3_and_0_forced_and_its_json_has_the_totals(
    sims: Sims, tmp_path: Path
) -> None:
    code, out, _ = await asyncio.to_thread(_cli, sims, tmp_path, "--json")
    assert code == 0, out
    document = json.loads(out)
    assert document["totals"]["all"]["unchanged"] > 0 and "update" not in document["totals"]["all"]
    assert document["guard"]["allowed"] is True

    for school_id in sorted(sims.school.students)[: len(sims.school.students) // 2]:
        del sims.school.students[school_id]
    code, _, output = await asyncio.to_thread(_cli, sims, tmp_path, "--dry-run")
    assert code == 3, output
    assert "Reconcile plan (dry run: nothing written)" in output and "held" in output

    code, _, output = await asyncio.to_thread(_cli, sims, tmp_path)
    assert code == 3, output
    assert "--force" in output

    code, out, _ = await asyncio.to_thread(_cli, sims, tmp_path, "--force", "--json")
    assert code == 0, out
    forced = json.loads(out)
    assert forced["totals"]["student"]["archive"] > 0
    assert all(item["action"] != "held" for item in forced["items"])
