"""One school's slow or rate-limiting ManageBac+ never holds back another school's changes
(docs/design.md §4), on the real broker: each school has its own slots in the consume loop
and its own request budget."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from consumers.adapters.kafka.publisher import KafkaPublisher
from consumers.adapters.managebac import RetryPolicy
from consumers.bootstrap import open_services
from consumers.events import ChangeEvent, to_message
from consumers.runner import ChangeRunner, RunnerConfig
from consumers.settings import SchoolsFile, Settings, Topics
from sim.isams.app import SimConfig as IsamsConfig
from sim.isams.app import create_app as create_isams_app
from sim.isams.school import generate_school
from sim.managebac import SimConfig as ManagebacConfig
from sim.managebac import create_app as create_managebac_app
from sim.serving import serve_app

pytestmark = pytest.mark.kafka

SECRET = "whsec_" + base64.b64encode(b"school-isolation-test-secret-32b").decode()
YEARS = {year: 10209265 + year for year in range(7, 14)}


def school(school_id: str, isams_url: str, managebac_url: str) -> dict[str, Any]:
    return {
        "id": school_id,
        "webhook_secrets": [SECRET],
        "isams": {
            "base_url": isams_url,
            "client_id": "sync-client",
            "client_secret": "sync-secret",
        },
        "managebac": {"base_url": managebac_url, "token": "t", "max_requests_per_second": 50},
        "mappings": {"year_groups": YEARS, "contact_types": []},
        "staff": {"enabled": False},
    }


async def test_a_slow_school_does_not_hold_back_another_schools_changes(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    data = generate_school(320, seed=9)
    current = [
        s for s in data.all_students() if s["systemStatus"] == "Current" and s["yearGroup"] in YEARS
    ]
    isams = create_isams_app(IsamsConfig(), data)
    slow = create_managebac_app(ManagebacConfig(token="t", latency_ms=3000))  # a struggling one
    quick = create_managebac_app(ManagebacConfig(token="t"))
    async with (
        serve_app(isams, lifespan="off") as isams_url,
        serve_app(slow, lifespan="off") as slow_url,
        serve_app(quick, lifespan="off") as quick_url,
        httpx.AsyncClient(base_url=quick_url) as quick_sim,
    ):
        schools = SchoolsFile.model_validate(
            {
                "schools": [
                    school("slow", isams_url, slow_url),
                    school("quick", isams_url, quick_url),
                ]
            }
        )
        settings = Settings(
            kafka_bootstrap=kafka_bootstrap,
            kafka_topic_prefix=topics.changes.removesuffix("isams.changes"),
            consumer_group=f"group-{topics.changes}",
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        )
        results: list[Any] = []
        async with open_services(settings, schools, retry=RetryPolicy(attempts=2)) as services:
            await services.ledger.create_schema()
            runner = ChangeRunner(
                RunnerConfig(settings.kafka_bootstrap, settings.consumer_group, settings.topics),
                services.sync_service().process,
                on_result=lambda change, result: results.append((change, result)),
                on_share=services.set_managebac_share,
            )
            running = asyncio.create_task(runner.run())
            try:
                # The slow school's whole export first, then ten changes of the quick one.
                await publish(kafka_bootstrap, topics, "slow", current)
                await asyncio.sleep(1.0)
                sent = time.monotonic()
                await publish(kafka_bootstrap, topics, "quick", current[:10])
                wanted = {s["schoolCode"] for s in current[:10]}
                while not wanted <= await student_ids(quick_sim):
                    assert time.monotonic() - sent < 20, "the quick school waited on the slow one"
                    await asyncio.sleep(0.1)
                took = time.monotonic() - sent
            finally:
                runner.stop()
                await asyncio.wait_for(running, timeout=60)
    # The slow school needs 3 s a request with at most its 16 slots: its ~280 creates take
    # about a minute (with one pool of 64 slots the quick school's ten would wait 10 s or
    # more behind them); the quick school's ten are done in a second or two beside them.
    assert took < 6.0, f"the quick school's changes took {took:.1f} s"
    slow_done = sum(1 for change, _ in results if change is not None and change.school == "slow")
    assert slow_done < len(current), "the slow school was done first: nothing was measured"


async def publish(
    kafka_bootstrap: str, topics: Topics, school_id: str, students: list[dict[str, Any]]
) -> None:
    now = datetime.now(UTC)
    publisher = KafkaPublisher(kafka_bootstrap)
    await publisher.start()
    try:
        events = [
            ChangeEvent.model_validate(
                {
                    "type": "student.updated",
                    "timestamp": now,
                    "data": {"schoolId": s["schoolId"], "record": s},
                }
            )
            for s in students
        ]
        messages = [to_message(event, school_id, f"iso-{school_id}", now) for event in events]
        await publisher.publish(topics.changes, messages)
    finally:
        await publisher.stop()


async def student_ids(sim: httpx.AsyncClient) -> set[str]:
    state = (await sim.get("/_sim/state")).json()
    return {s["student_id"] for s in state["students"]}
