"""A batch Kafka takes only part of is answered 503; the sender's retry of the same request
gets it all applied, with no duplicate user (docs/design.md §2.2, on the real broker)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from consumers.adapters.kafka.publisher import KafkaPublisher
from consumers.ports import OutgoingMessage, PublishError
from consumers.settings import Topics
from tests.integration.sync_stack import Stack, open_stack

pytestmark = pytest.mark.kafka


class KafkaFailingPartWay:
    """The real publisher, except that its first call publishes half and then fails, as
    when the broker goes away in the middle of a batch."""

    def __init__(self, real: KafkaPublisher) -> None:
        self.real = real
        self.calls = 0
        self.published_before_failing = 0

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        self.calls += 1
        if self.calls == 1:
            half = list(messages)[: len(messages) // 2]
            await self.real.publish(topic, half)
            self.published_before_failing = len(half)
            raise PublishError("the broker went away part-way through the batch")
        await self.real.publish(topic, messages)

    async def ping(self) -> bool:
        return await self.real.ping()


@pytest.fixture
async def failing(kafka_bootstrap: str) -> AsyncIterator[KafkaFailingPartWay]:
    real = KafkaPublisher(kafka_bootstrap)
    await real.start()
    try:
        yield KafkaFailingPartWay(real)
    finally:
        await real.stop()


async def test_a_batch_answered_503_is_fully_applied_after_the_senders_retry(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, failing: KafkaFailingPartWay
) -> None:
    async with open_stack(kafka_bootstrap, topics, tmp_path, failing) as stack:
        await run(stack, failing)


async def run(stack: Stack, failing: KafkaFailingPartWay) -> None:
    students = stack.emitter.events_for_all_students()
    staff = stack.emitter.events_for_all_staff()
    batch = [*students, *staff]
    await stack.start_consumer()

    response = await stack.emitter.send(batch)  # the emitter retries a 503, as senders do

    assert response.status_code == 202, response.text
    assert stack.emitter.stats.retries == 1 and failing.calls == 2
    assert failing.published_before_failing == len(batch) // 2
    # The first half was queued twice: every change is processed, repeats harmlessly.
    await stack.wait_for_results(len(batch) + failing.published_before_failing, timeout=90)
    state = await stack.managebac_state()
    student_ids = Counter(s["student_id"] for s in state["students"])
    emails = Counter(u["email"].casefold() for kind in ("parents", "teachers") for u in state[kind])
    assert student_ids and max(student_ids.values()) == 1, "a student was created twice"
    assert emails and max(emails.values()) == 1, "a parent or teacher was created twice"
    expected = {
        s["schoolCode"]
        for s in stack.school.all_students()
        if str(s["systemStatus"]).lower() == "current" and s["yearGroup"] in range(7, 14)
    }
    assert expected <= set(student_ids), "a student of the batch is missing"
