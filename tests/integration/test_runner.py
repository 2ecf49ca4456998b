"""The consumer loop on the real broker: order per key, retry topic, DLQ, safe commits."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from consumers.adapters.kafka.reader import read_to_end
from consumers.events import ChangeEvent, QueuedChange
from consumers.outcomes import Outcome, PermanentFailureError, Result, TransientFailureError
from consumers.parking import RetrySchedule
from consumers.runner import ChangeRunner, RunnerConfig
from consumers.settings import Topics

pytestmark = pytest.mark.kafka

Process = Callable[[QueuedChange], Awaitable[Result]]


def change(school_id: str, sequence: int = 0) -> QueuedChange:
    event = ChangeEvent.model_validate(
        {
            "type": "student.updated",
            "timestamp": "2026-11-28T10:00:00Z",
            "data": {"schoolId": school_id, "record": {"sequence": sequence}},
        }
    )
    return QueuedChange.from_event(
        event, "school", f"msg_{school_id}_{sequence}", datetime.now(UTC)
    )


async def publish(bootstrap: str, topic: str, changes: list[QueuedChange]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for item in changes:
            await producer.send(topic, value=item.to_bytes(), key=item.key.encode())
        await producer.flush()
    finally:
        await producer.stop()


def config(bootstrap: str, topics: Topics, **overrides: Any) -> RunnerConfig:
    values: dict[str, Any] = {
        "bootstrap": bootstrap,
        "group_id": f"group-{topics.changes}",
        "topics": topics,
        "commit_interval": 0.2,
        "drain_timeout": 5.0,
        "retry": RetrySchedule(delays=(0.5, 0.5)),
        **overrides,
    }
    return RunnerConfig(**values)


@asynccontextmanager
async def running(runner: ChangeRunner) -> AsyncIterator[ChangeRunner]:
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        runner.stop()
        await asyncio.wait_for(task, timeout=30)


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def read_topic(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + 15
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for items in batch.values():
                records.extend(items)
    finally:
        await consumer.stop()
    return records


async def committed(bootstrap: str, group: str, partition: TopicPartition) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        offset: int | None = await consumer.committed(partition)
        return offset
    finally:
        await consumer.stop()


async def test_changes_with_one_key_stay_in_order_while_keys_run_concurrently(
    kafka_bootstrap: str, topics: Topics
) -> None:
    seen: dict[str, list[int]] = defaultdict(list)
    concurrent = 0
    most_concurrent = 0

    async def process(item: QueuedChange) -> Result:
        nonlocal concurrent, most_concurrent
        concurrent += 1
        most_concurrent = max(most_concurrent, concurrent)
        await asyncio.sleep(0.01)
        assert item.data.record is not None
        seen[item.event.record_id].append(int(item.data.record["sequence"]))
        concurrent -= 1
        return Result(Outcome.UPDATED)

    changes = [change(f"s{key}", seq) for seq in range(20) for key in range(10)]
    await publish(kafka_bootstrap, topics.changes, changes)
    async with running(ChangeRunner(config(kafka_bootstrap, topics), process)):
        await until(lambda: sum(len(v) for v in seen.values()) == len(changes))

    assert all(sequence == list(range(20)) for sequence in seen.values())
    assert most_concurrent > 1


async def test_a_transient_failure_is_parked_and_applied_later_without_blocking_others(
    kafka_bootstrap: str, topics: Topics
) -> None:
    attempts: dict[str, int] = defaultdict(int)
    applied: dict[str, float] = {}

    async def process(item: QueuedChange) -> Result:
        key = item.event.record_id
        attempts[key] += 1
        if key == "flaky" and attempts[key] < 3:
            raise TransientFailureError("ManageBac+ answered 503")
        applied[key] = time.monotonic()
        return Result(Outcome.UPDATED)

    await publish(kafka_bootstrap, topics.changes, [change("flaky"), change("steady")])
    async with running(ChangeRunner(config(kafka_bootstrap, topics), process)):
        await until(lambda: "flaky" in applied and "steady" in applied)

    assert attempts["flaky"] == 3
    assert applied["steady"] < applied["flaky"]
    parked = await read_topic(kafka_bootstrap, topics.retry, 2)
    assert [dict(r.headers)["attempts"] for r in parked] == [b"1", b"2"]


async def test_permanent_failures_and_exhausted_retries_go_to_the_dlq_with_their_reason(
    kafka_bootstrap: str, topics: Topics
) -> None:
    results: list[Result] = []

    async def process(item: QueuedChange) -> Result:
        if item.event.record_id == "refused":
            raise PermanentFailureError("managebac-rejected", '{"errors":{"email":["is invalid"]}}')
        raise TransientFailureError("iSAMS unavailable")

    runner = ChangeRunner(
        config(kafka_bootstrap, topics), process, on_result=lambda _c, r: results.append(r)
    )
    await publish(kafka_bootstrap, topics.changes, [change("refused"), change("down")])
    async with running(runner):
        await until(lambda: len(results) == 2)

    dead = await read_topic(kafka_bootstrap, topics.dlq, 2)
    by_class = {dict(r.headers)["error-class"]: dict(r.headers) for r in dead}
    assert set(by_class) == {b"managebac-rejected", b"retries-exhausted"}
    assert b"is invalid" in by_class[b"managebac-rejected"]["error-detail"]
    assert by_class[b"retries-exhausted"]["attempts"] == b"3"
    assert all(result.outcome is Outcome.DEAD_LETTERED for result in results)


async def test_a_record_still_running_holds_the_commit_back_so_it_is_redelivered(
    kafka_bootstrap: str, topics: Topics
) -> None:
    release = asyncio.Event()
    done: list[str] = []

    async def stuck_first(item: QueuedChange) -> Result:
        if item.event.record_id == "slow":
            await release.wait()
        done.append(item.event.record_id)
        return Result(Outcome.UPDATED)

    items = [change("slow"), *(change(f"fast{i}") for i in range(5))]
    # All on one partition, so that later offsets finish before the first one.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for item in items:
            await producer.send(topics.changes, item.to_bytes(), key=item.key.encode(), partition=0)
        await producer.flush()
    finally:
        await producer.stop()

    settings = config(kafka_bootstrap, topics, drain_timeout=0.5)
    async with running(ChangeRunner(settings, stuck_first)):
        await until(lambda: len(done) == 5)
        await asyncio.sleep(0.6)  # several commit intervals pass
    first = TopicPartition(topics.changes, 0)
    assert await committed(kafka_bootstrap, settings.group_id, first) == 0

    redelivered: list[str] = []

    async def record_all(item: QueuedChange) -> Result:
        redelivered.append(item.event.record_id)
        return Result(Outcome.UPDATED)

    async with running(ChangeRunner(settings, record_all)):
        await until(lambda: len(redelivered) == 6)
    assert redelivered[0] == "slow"
    assert await committed(kafka_bootstrap, settings.group_id, first) == 6


async def test_a_record_stuck_on_one_school_does_not_hold_a_rebalance(
    kafka_bootstrap: str, topics: Topics
) -> None:
    """The whole group waits for a member's revoke callback: a record that never finishes
    (a school's ManageBac+ hanging) is cancelled after `revoke_timeout`, so the partitions
    move and their new owner runs the record again."""
    forever = asyncio.Event()
    first_started: set[str] = set()
    second_done: list[str] = []

    async def hangs(item: QueuedChange) -> Result:
        first_started.add(item.event.record_id)
        await forever.wait()
        return Result(Outcome.UPDATED)

    async def finishes(item: QueuedChange) -> Result:
        second_done.append(item.event.record_id)
        return Result(Outcome.UPDATED)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for partition in range(3):  # one stuck record on each: the newcomer takes some
            item = change(f"stuck{partition}")
            await producer.send(
                topics.changes, item.to_bytes(), key=item.key.encode(), partition=partition
            )
        await producer.flush()
    finally:
        await producer.stop()

    settings = config(kafka_bootstrap, topics, revoke_timeout=1.0, drain_timeout=0.5)
    async with running(ChangeRunner(settings, hangs)):
        await until(lambda: len(first_started) == 3)
        joined = time.monotonic()
        async with running(ChangeRunner(settings, finishes)):
            await until(lambda: len(second_done) >= 1, timeout=30)
            moved_after = time.monotonic() - joined
    assert set(second_done) <= {"stuck0", "stuck1", "stuck2"}
    # Well within the session timeout (10 s), after which Kafka would evict the stuck
    # member anyway, and its rejoining later would start another rebalance (a storm).
    assert moved_after < 7.0, f"the partitions moved after {moved_after:.1f} s"


async def test_a_consumer_joins_its_group_in_one_rebalance(
    kafka_bootstrap: str, topics: Topics
) -> None:
    """Each join is one JoinGroup request. aiokafka 0.14 sends one per listed assignor
    (aio-libs/aiokafka#1168), each with other metadata, so every join set off a second
    rebalance, and two replicas starting together could rebalance each other for minutes.
    Alone in a fresh group, the first assignment must be generation 1."""
    assigned: list[float] = []  # the share taken at each assignment
    runner = ChangeRunner(config(kafka_bootstrap, topics), _never_called, on_share=assigned.append)
    async with running(runner):
        await until(lambda: bool(assigned))
        await asyncio.sleep(1.0)  # a second rebalance would follow at once
        consumer = runner._consumer
        assert consumer is not None
        generation = consumer._coordinator.generation  # not public in aiokafka
    assert (len(assigned), generation) == (1, 1)


async def _never_called(item: QueuedChange) -> Result:
    raise AssertionError(f"no change was queued, got {item.key}")


def school_change(school: str, record_id: str) -> QueuedChange:
    event = ChangeEvent.model_validate(
        {
            "type": "student.updated",
            "timestamp": "2026-11-28T10:00:00Z",
            "data": {"schoolId": record_id},
        }
    )
    return QueuedChange.from_event(event, school, f"msg_{school}_{record_id}", datetime.now(UTC))


async def test_a_busy_schools_overflow_waits_on_the_retry_topic_and_holds_no_other_school(
    kafka_bootstrap: str, topics: Topics
) -> None:
    """Beyond `max_handed_out_per_school`, a school's new records are parked on the retry
    topic for `busy_delay` (no attempt counted) while another school's record goes at once;
    once the busy school moves again, every parked record is applied."""
    release = asyncio.Event()
    done: list[tuple[str, str]] = []

    async def process(item: QueuedChange) -> Result:
        if item.school == "busy":
            await release.wait()
        done.append((item.school, item.event.record_id))
        return Result(Outcome.UPDATED)

    busy = [school_change("busy", str(number)) for number in range(8)]
    await publish(kafka_bootstrap, topics.changes, [*busy, school_change("quiet", "q1")])
    settings = config(kafka_bootstrap, topics, max_handed_out_per_school=2, busy_delay=0.3)
    async with running(ChangeRunner(settings, process)):
        await until(lambda: ("quiet", "q1") in done, timeout=30)
        assert [school for school, _ in done] == ["quiet"]  # the busy school still waits
        release.set()
        await until(lambda: {("busy", str(n)) for n in range(8)} <= set(done), timeout=30)
    assert {record_id for school, record_id in done if school == "busy"} == {
        str(n) for n in range(8)
    }
    parked = await read_to_end(kafka_bootstrap, topics.retry, timeout=30)
    assert len(parked) >= 6, "the records beyond the busy school's 2 went by the retry topic"
