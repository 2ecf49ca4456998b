"""End to end on real parts: signed webhook → serve → Kafka → consumer → ManageBac+ simulator.

Everything runs in this process but talks over real sockets: the iSAMS and ManageBac+
simulators and the ingest app on uvicorn, the consumer on the real broker, the ledger on
SQLite.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.settings import SchoolsFile, Settings, Topics
from consumers.adapters.ledger import Ledger
from consumers.adapters.managebac import RetryPolicy
from consumers.bootstrap import build_sync_service
from consumers.domain.records import Status
from consumers.outcomes import Result
from consumers.runner import ChangeRunner, RunnerConfig
from sim.isams.app import SimConfig as IsamsConfig
from sim.isams.app import create_app as create_isams_app
from sim.isams.emitter import WebhookEmitter
from sim.isams.school import SchoolData, generate_school
from sim.managebac import SimConfig as ManagebacConfig
from sim.managebac import create_app as create_managebac_app
from sim.serving import serve_app

pytestmark = pytest.mark.kafka

SCHOOL = "e2e-school"
SECRET = "whsec_" + base64.b64encode(b"end-to-end-test-secret-32-bytes!").decode()
TOKEN = "e2e-managebac-token"
YEAR_GROUPS = {year: 20000000 + year for year in range(7, 14)}


@dataclass
class Stack:
    """The running parts a test drives and inspects."""

    school: SchoolData
    settings: Settings
    emitter: WebhookEmitter
    thin_emitter: WebhookEmitter
    managebac: httpx.AsyncClient
    results: list[Result]
    start_consumer: Callable[[], Any]

    async def managebac_students(self) -> dict[str, dict[str, Any]]:
        state = (await self.managebac.get("/_sim/state")).json()
        return {s["student_id"]: s for s in state["students"]}

    async def managebac_writes(self) -> int:
        return int((await self.managebac.get("/_sim/stats")).json()["writes"])

    async def wait_for_results(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.results) < count:
            assert time.monotonic() < deadline, f"only {len(self.results)} of {count} applied"
            await asyncio.sleep(0.05)


def _schools(isams_url: str, managebac_url: str) -> SchoolsFile:
    return SchoolsFile.model_validate(
        {
            "schools": [
                {
                    "id": SCHOOL,
                    "webhook_secrets": [SECRET],
                    "isams": {
                        "base_url": isams_url,
                        "client_id": "sync-client",
                        "client_secret": "sync-secret",
                    },
                    "managebac": {
                        "base_url": managebac_url,
                        "token": TOKEN,
                        "max_requests_per_second": 500,
                    },
                    "mappings": {"year_groups": YEAR_GROUPS},
                }
            ]
        }
    )


@asynccontextmanager
async def _consumer(
    settings: Settings, schools: SchoolsFile, results: list[Result]
) -> AsyncIterator[None]:
    async with build_sync_service(settings, schools, RetryPolicy(attempts=2)) as service:
        runner = ChangeRunner(
            RunnerConfig(settings.kafka_bootstrap, settings.consumer_group, settings.topics),
            service.process,
            on_result=lambda _change, result: results.append(result),
        )
        task = asyncio.create_task(runner.run())
        try:
            yield
        finally:
            runner.stop()
            await asyncio.wait_for(task, timeout=30)


@pytest.fixture
async def stack(kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> AsyncIterator[Stack]:
    school = generate_school(40, seed=11)
    isams = create_isams_app(IsamsConfig(), school)
    managebac = create_managebac_app(ManagebacConfig(token=TOKEN, year_groups=YEAR_GROUPS))
    async with (
        serve_app(isams, lifespan="off") as isams_url,
        serve_app(managebac, lifespan="off") as managebac_url,
    ):
        schools = _schools(isams_url, managebac_url)
        settings = Settings(
            kafka_bootstrap=kafka_bootstrap,
            kafka_topic_prefix=topics.changes.removesuffix("isams.changes"),
            consumer_group=f"group-{topics.changes}",
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
            schools_file=tmp_path / "unused.yaml",
        )
        results: list[Result] = []
        async with (
            serve_app(create_app(settings, schools)) as ingest_url,
            httpx.AsyncClient(timeout=30) as http,
            httpx.AsyncClient(base_url=managebac_url) as managebac_http,
        ):
            common: dict[str, Any] = {
                "base_url": ingest_url,
                "school_id": SCHOOL,
                "secret": SECRET,
            }
            consumer_running: list[Any] = []

            async def start_consumer() -> None:
                context = _consumer(settings, schools, results)
                await context.__aenter__()
                consumer_running.append(context)

            try:
                yield Stack(
                    school=school,
                    settings=settings,
                    emitter=WebhookEmitter(school, http, fat=True, **common),
                    thin_emitter=WebhookEmitter(school, http, fat=False, **common),
                    managebac=managebac_http,
                    results=results,
                    start_consumer=start_consumer,
                )
            finally:
                for context in consumer_running:
                    await context.__aexit__(None, None, None)


def _current_mapped_student(school: SchoolData) -> dict[str, Any]:
    for record in school.all_students():
        if (
            str(record.get("systemStatus", "")).lower() == "current"
            and record.get("yearGroup") in YEAR_GROUPS
            and record.get("schoolEmailAddress")
        ):
            return record
    raise AssertionError("the generated school has no current student in a mapped year")


async def test_a_signed_webhook_ends_as_the_right_managebac_student(stack: Stack) -> None:
    record = _current_mapped_student(stack.school)
    await stack.start_consumer()

    response = await stack.emitter.send(stack.emitter.student_event(record["schoolId"]))
    assert response.status_code == 202
    await stack.wait_for_results(1)

    student = (await stack.managebac_students())[record["schoolCode"]]
    assert student["first_name"] == record["forename"]
    assert student["last_name"] == record["surname"]
    assert student["email"] == record["schoolEmailAddress"]
    assert student["identifier"] == record["schoolId"]
    assert student["year_group_id"] == YEAR_GROUPS[record["yearGroup"]]
    assert student["birthday"] == record["dob"][:10]
    assert student["attendance_start_date"] == record["enrolmentDate"][:10]


async def test_an_event_accepted_while_the_consumer_is_down_is_applied_after_it_starts(
    stack: Stack,
) -> None:
    record = _current_mapped_student(stack.school)
    response = await stack.emitter.send(stack.emitter.student_event(record["schoolId"]))
    assert response.status_code == 202
    await asyncio.sleep(0.5)
    assert record["schoolCode"] not in await stack.managebac_students()

    await stack.start_consumer()
    await stack.wait_for_results(1)
    assert record["schoolCode"] in await stack.managebac_students()


async def test_a_thin_event_reads_the_record_from_isams_and_an_unchanged_one_writes_nothing(
    stack: Stack,
) -> None:
    record = _current_mapped_student(stack.school)
    await stack.start_consumer()
    await stack.thin_emitter.send(stack.thin_emitter.student_event(record["schoolId"]))
    await stack.wait_for_results(1)
    assert record["schoolCode"] in await stack.managebac_students()
    writes = await stack.managebac_writes()

    await stack.thin_emitter.send(stack.thin_emitter.student_event(record["schoolId"]))
    await stack.wait_for_results(2)
    assert stack.results[-1].outcome.value == "unchanged"
    assert await stack.managebac_writes() == writes

    stack.school.edit_student(record["schoolId"], {"mobileNumber": "+44 7700 900123"})
    await stack.thin_emitter.send(stack.thin_emitter.student_event(record["schoolId"]))
    await stack.wait_for_results(3)
    student = (await stack.managebac_students())[record["schoolCode"]]
    assert student["mobile_phone_number"] == "+44 7700 900123"
    assert await stack.managebac_writes() == writes + 1


async def test_a_leaver_is_archived_and_a_return_unarchives_with_the_year_group(
    stack: Stack,
) -> None:
    record = _current_mapped_student(stack.school)
    sid = record["schoolId"]
    await stack.start_consumer()
    await stack.thin_emitter.send(stack.thin_emitter.student_event(sid))
    await stack.wait_for_results(1)

    stack.school.edit_student(sid, {"systemStatus": "Leaver", "leavingDate": "2026-07-20T00:00:00"})
    await stack.thin_emitter.send(stack.thin_emitter.student_event(sid))
    await stack.wait_for_results(2)
    student = (await stack.managebac_students())[record["schoolCode"]]
    assert student["archived"] is True
    assert student["withdrawn_on"] == "2026-07-20"
    assert "year_group_id" not in student

    stack.school.edit_student(sid, {"systemStatus": "Current", "leavingDate": None})
    await stack.thin_emitter.send(stack.thin_emitter.student_event(sid))
    await stack.wait_for_results(3)
    student = (await stack.managebac_students())[record["schoolCode"]]
    assert student["archived"] is False
    assert student["year_group_id"] == YEAR_GROUPS[record["yearGroup"]]


async def test_a_student_in_an_unmapped_year_is_skipped_with_the_reason(
    stack: Stack, tmp_path: Path
) -> None:
    record = _current_mapped_student(stack.school)
    stack.school.edit_student(record["schoolId"], {"yearGroup": 4})
    await stack.start_consumer()
    await stack.emitter.send(stack.emitter.student_event(record["schoolId"]))
    await stack.wait_for_results(1)

    assert record["schoolCode"] not in await stack.managebac_students()
    ledger = Ledger.from_url(stack.settings.database_url)
    try:
        row = await ledger.get(SCHOOL, "student", record["schoolId"])
    finally:
        await ledger.close()
    assert row is not None
    assert row.status is Status.SKIPPED
    assert row.reason is not None and "4" in row.reason and "year_groups" in row.reason
