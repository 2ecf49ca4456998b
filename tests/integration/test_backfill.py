"""Backfill on real parts: the whole export is queued and applied; the archive guard stops a
run that would archive more than 10% of synced users, records why, and yields to --force."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from consumers.adapters.kafka.publisher import KafkaPublisher
from consumers.adapters.ledger import Ledger
from consumers.adapters.managebac import RetryPolicy
from consumers.bootstrap import school_ports
from consumers.capture.backfill import RUN_KIND, BackfillReport, run_backfill
from consumers.domain.records import Status
from consumers.ports import OutgoingMessage, PublishError
from sim.isams.store import roll_of
from tests.integration.sync_stack import ADMIN_TOKEN, SCHOOL, YEAR_GROUPS, Stack

pytestmark = pytest.mark.kafka


@pytest.fixture
async def backfill(stack: Stack) -> AsyncIterator[BackfillRunner]:
    runner = BackfillRunner(stack)
    await runner.start()
    yield runner
    await runner.stop()


class BackfillRunner:
    """Runs `run_backfill` with real clients against the stack's simulators and broker."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.ledger = Ledger.from_url(stack.settings.database_url)
        self.publisher = KafkaPublisher(stack.settings.kafka_bootstrap)
        self.http = httpx.AsyncClient(timeout=30)

    async def start(self) -> None:
        await self.ledger.create_schema()
        await self.publisher.start()

    async def stop(self) -> None:
        await self.publisher.stop()
        await self.http.aclose()
        await self.ledger.close()

    async def __call__(self, dry_run: bool = False, force: bool = False) -> BackfillReport:
        ports = school_ports(self.stack.schools.schools[0], self.http, RetryPolicy())
        return await run_backfill(
            ports,
            self.ledger,
            self.publisher,
            self.stack.settings.topics,
            dry_run=dry_run,
            force=force,
        )


def on_roll_or_left(stack: Stack) -> int:
    """Pupils iSAMS lists: current ones in /api/students, leavers in /api/alumni (not
    applicants, who are under admissions)."""
    return sum(roll_of(s) != "applicants" for s in stack.school.all_students())


def expected_students(stack: Stack) -> set[str]:
    return {
        s["schoolCode"]
        for s in stack.school.all_students()
        if str(s.get("systemStatus")).lower() == "current" and s.get("yearGroup") in YEAR_GROUPS
    }


async def active_students(stack: Stack) -> set[str]:
    state = await stack.managebac_state()
    return {s["student_id"] for s in state["students"] if not s["archived"]}


async def test_a_backfill_queues_the_whole_export_and_the_consumer_applies_it(
    stack: Stack, backfill: BackfillRunner
) -> None:
    await stack.start_consumer()
    report = await backfill()

    students = on_roll_or_left(stack)
    staff = len(stack.school.all_employees())
    assert (report.students, report.staff, report.queued) == (students, staff, students + staff)
    assert report.decision.allowed
    await stack.wait_for_results(students + staff, timeout=60)
    assert await active_students(stack) == expected_students(stack)


async def test_a_dry_run_queues_nothing(stack: Stack, backfill: BackfillRunner) -> None:
    await stack.start_consumer()
    report = await backfill(dry_run=True)
    assert report.queued == 0
    assert len(report.events) == report.students + report.staff
    assert await active_students(stack) == set()


async def test_the_guard_stops_a_run_that_would_archive_too_many_until_forced(
    stack: Stack, backfill: BackfillRunner
) -> None:
    await stack.start_consumer()
    first = await backfill()
    await stack.wait_for_results(first.queued, timeout=60)
    synced_before = await active_students(stack)

    # iSAMS "loses" a quarter of the students (an emptied or broken export).
    lost = sorted(stack.school.students)[: len(stack.school.students) // 4]
    for school_id in lost:
        del stack.school.students[school_id]

    stopped = await backfill()
    assert not stopped.decision.allowed
    assert stopped.queued == 0
    assert "--force" in stopped.decision.reason
    run = await backfill.ledger.get(SCHOOL, RUN_KIND, stopped.run_id)
    assert run is not None and run.status is Status.FAILED
    assert run.reason is not None and "Stopped" in run.reason
    assert await active_students(stack) == synced_before

    forced = await backfill(force=True)
    assert forced.decision.allowed
    assert forced.removals > 0
    await stack.wait_for_results(first.queued + forced.queued, timeout=60)
    assert await active_students(stack) == expected_students(stack)


async def test_the_admin_api_runs_a_backfill(stack: Stack) -> None:
    async with httpx.AsyncClient(
        base_url=stack.ingest_url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
    ) as http:
        response = await http.post(f"/v1/schools/{SCHOOL}/backfill", json={"dry_run": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["students"] == on_roll_or_left(stack)
    assert body["queued"] == 0
    assert body["allowed"] is True
    assert "Dry run" in body["summary"]


class FailsOnce:
    """The real publisher, except that its second publish fails: Kafka lost half-way."""

    def __init__(self, real: KafkaPublisher) -> None:
        self.real = real
        self.calls = 0

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        self.calls += 1
        if self.calls == 2:
            raise PublishError("the broker went away half-way through the backfill")
        await self.real.publish(topic, messages)

    async def ping(self) -> bool:
        return await self.real.ping()


async def test_a_backfill_interrupted_half_way_and_run_again_applies_everything_once(
    stack: Stack, backfill: BackfillRunner
) -> None:
    await stack.start_consumer()
    ports = school_ports(stack.schools.schools[0], backfill.http, RetryPolicy())
    interrupted = FailsOnce(backfill.publisher)
    with pytest.raises(PublishError):
        await run_backfill(
            ports, backfill.ledger, interrupted, stack.settings.topics, batch_size=20
        )
    assert interrupted.calls == 2  # the first batch went, the second failed

    report = await backfill()  # run again, whole

    assert report.decision.allowed
    await stack.wait_for_results(20 + report.queued, timeout=90)
    assert await active_students(stack) == expected_students(stack)
    state = await stack.managebac_state()
    assert max(Counter(s["student_id"] for s in state["students"]).values()) == 1
    emails = Counter(p["email"].casefold() for p in state["parents"])
    assert max(emails.values()) == 1
