"""Fault: a step fails in a way nobody foresaw (a bug, the ledger's database refusing).

Found by the broker-restart test: an exception other than the two failure kinds used to
end the record's task silently, leaving its offset in flight for good (so no later commit
of its partition went through) and the change neither applied nor dead-lettered. Now it
is parked and retried like a transient failure, with only its class and place as reason.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from consumers.events import ChangeEvent, QueuedChange
from consumers.outcomes import Outcome, Result
from consumers.parking import RetrySchedule
from consumers.runner import ChangeRunner, RunnerConfig
from consumers.settings import Topics
from tests.faults.harness import committed_offsets, end_offsets, read_topic

pytestmark = pytest.mark.kafka

PARTITIONS = 3  # the `topics` fixture's


def _change(school_id: str) -> QueuedChange:
    event = ChangeEvent.model_validate(
        {
            "type": "student.updated",
            "timestamp": "2026-11-28T10:00:00Z",
            "data": {"schoolId": school_id},
        }
    )
    return QueuedChange.from_event(event, "school", f"msg_{school_id}", datetime.now(UTC))


async def test_an_unforeseen_error_is_retried_and_the_partition_keeps_committing(
    kafka_bootstrap: str, topics: Topics
) -> None:
    calls: Counter[str] = Counter()
    applied: list[str] = []

    async def process(change: QueuedChange) -> Result:
        record_id = change.event.record_id
        calls[record_id] += 1
        if record_id == "fragile" and calls[record_id] == 1:
            raise RuntimeError("database is locked (Alice Example, born 2014-01-29)")
        applied.append(record_id)
        return Result(Outcome.UPDATED, wrote=True)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for change in [_change("fragile"), *(_change(f"steady{i}") for i in range(5))]:
            await producer.send_and_wait(
                topics.changes, change.to_bytes(), key=change.key.encode(), partition=0
            )
    finally:
        await producer.stop()
    group = f"group-{topics.changes}"
    runner = ChangeRunner(
        RunnerConfig(
            kafka_bootstrap,
            group,
            topics,
            commit_interval=0.2,
            retry=RetrySchedule(delays=(0.3,)),
        ),
        process,
    )
    task = asyncio.create_task(runner.run())
    try:
        deadline = time.monotonic() + 30
        while not await _all_committed(kafka_bootstrap, topics, group) or "fragile" not in applied:
            assert time.monotonic() < deadline, f"not settled; applied {applied}"
            await asyncio.sleep(0.2)
    finally:
        runner.stop()
        await asyncio.wait_for(task, timeout=30)

    assert calls["fragile"] == 2
    assert sorted(applied) == ["fragile", *(f"steady{i}" for i in range(5))]
    parked = await read_topic(kafka_bootstrap, topics.retry)
    detail = dict(parked[0].headers)["error-detail"].decode()
    assert detail.startswith("unexpected RuntimeError at test_unforeseen_errors.py:")
    assert "Alice" not in detail


async def _all_committed(bootstrap: str, topics: Topics, group: str) -> bool:
    ends = await end_offsets(bootstrap, [topics.changes, topics.retry], partitions=PARTITIONS)
    committed = await committed_offsets(bootstrap, group)
    return all(committed.get(tp, 0) >= end for tp, end in ends.items())
