"""Dead letters on the real broker: list, filter, replay once, over the CLI functions and the
admin API."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.main import open_app
from consumers.adapters.kafka.dlq import DeadLetterFilter, list_dead_letters, replay_dead_letters
from consumers.events import ChangeEvent, QueuedChange
from consumers.outcomes import Outcome, PermanentFailureError, Result
from consumers.runner import ChangeRunner
from consumers.settings import Settings, Topics
from sim.serving import serve_app
from tests.integration.ingest_support import SCHOOL, schools_file
from tests.integration.test_runner import config, publish, running, until

pytestmark = pytest.mark.kafka
ADMIN_TOKEN = "dlq-admin-token-0123456789abcdef"


def change(school: str, school_id: str) -> QueuedChange:
    event = ChangeEvent.model_validate(
        {
            "type": "student.updated",
            "timestamp": "2026-11-28T10:00:00Z",
            "data": {"schoolId": school_id},
        }
    )
    return QueuedChange.from_event(event, school, f"msg_{school_id}", datetime.now(UTC))


async def park_all(bootstrap: str, topics: Topics, changes: list[QueuedChange]) -> None:
    """Run the real runner with a processor that refuses everything."""
    parked: list[Result] = []

    async def refuse(item: QueuedChange) -> Result:
        raise PermanentFailureError("managebac-rejected", f"refused {item.event.record_id}")

    await publish(bootstrap, topics.changes, changes)
    runner = ChangeRunner(
        config(bootstrap, topics), refuse, on_result=lambda _c, r: parked.append(r)
    )
    async with running(runner):
        await until(lambda: len(parked) == len(changes))


async def test_list_filters_and_replay_applies_each_letter_once(
    kafka_bootstrap: str, topics: Topics
) -> None:
    await park_all(
        kafka_bootstrap,
        topics,
        [change(SCHOOL, "1"), change(SCHOOL, "2"), change("other-school", "3")],
    )
    everything = await list_dead_letters(kafka_bootstrap, topics)
    assert len(everything) == 3
    assert {letter.error_class for letter in everything} == {"managebac-rejected"}
    ours = await list_dead_letters(kafka_bootstrap, topics, DeadLetterFilter(school=SCHOOL))
    assert sorted(letter.key for letter in ours) == [f"{SCHOOL}:student:1", f"{SCHOOL}:student:2"]
    one = await list_dead_letters(
        kafka_bootstrap, topics, DeadLetterFilter(key=f"{SCHOOL}:student:2")
    )
    assert [letter.key for letter in one] == [f"{SCHOOL}:student:2"]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert await list_dead_letters(kafka_bootstrap, topics, DeadLetterFilter(since=future)) == []

    assert await replay_dead_letters(kafka_bootstrap, topics, ours) == 2
    assert (
        await replay_dead_letters(
            kafka_bootstrap,
            topics,
            await list_dead_letters(kafka_bootstrap, topics, DeadLetterFilter(school=SCHOOL)),
        )
        == 0
    )
    remaining = await list_dead_letters(kafka_bootstrap, topics)
    assert [letter.school for letter in remaining] == ["other-school"]

    applied: Counter[str] = Counter()

    async def accept(item: QueuedChange) -> Result:
        applied[item.event.record_id] += 1
        return Result(Outcome.UPDATED)

    fresh_group = config(kafka_bootstrap, topics, group_id=f"replay-{topics.changes}")
    async with running(ChangeRunner(fresh_group, accept)):
        await until(lambda: sum(applied.values()) >= 5)  # 3 originals + 2 replays
        await asyncio.sleep(0.5)
    assert applied == Counter({"1": 2, "2": 2, "3": 1})


async def test_the_admin_api_lists_and_replays_a_schools_dead_letters(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    await park_all(kafka_bootstrap, topics, [change(SCHOOL, "7"), change("other-school", "8")])
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        kafka_topic_prefix=topics.changes.removesuffix("isams.changes"),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        admin_token=ADMIN_TOKEN,
    )
    async with (
        open_app(settings, schools_file()) as app,
        serve_app(app) as url,
        httpx.AsyncClient(
            base_url=url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        ) as http,
    ):
        listed = (await http.get(f"/v1/schools/{SCHOOL}/dlq")).json()["dead_letters"]
        assert [item["key"] for item in listed] == [f"{SCHOOL}:student:7"]
        assert listed[0]["error_class"] == "managebac-rejected"

        replay = await http.post(f"/v1/schools/{SCHOOL}/dlq/replay", json={})
        assert replay.status_code == 200
        assert replay.json()["replayed"] == 1
        assert (await http.get(f"/v1/schools/{SCHOOL}/dlq")).json()["dead_letters"] == []
        unknown = await http.post("/v1/schools/nowhere/dlq/replay", json={})
        assert unknown.status_code == 404
