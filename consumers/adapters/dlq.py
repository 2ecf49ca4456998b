"""The dead-letter queue on Kafka: list parked changes and replay them.

A replay republishes the change to `isams.changes` (attempts reset) and then writes a
marker into the DLQ topic itself (`replay-of: <partition>/<offset>`), so a change that was
replayed is not listed or replayed again: the DLQ's state lives in Kafka, next to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.events import QueuedChange
from app.kafka_connection import Kafka, client_options
from app.settings import Topics

REPLAY_OF = "replay-of"


@dataclass(frozen=True)
class DeadLetter:
    """One parked change and why it was parked (no personal data: ids and reasons)."""

    partition: int
    offset: int
    key: str
    school: str | None
    type: str | None
    error_class: str
    error_detail: str
    attempts: int
    failed_at: datetime | None
    value: bytes

    @property
    def position(self) -> str:
        return f"{self.partition}/{self.offset}"


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters to act on; every field left None matches all."""

    school: str | None = None
    key: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.school is not None and letter.school != self.school:
            return False
        if self.key is not None and letter.key != self.key:
            return False
        if letter.failed_at is not None:
            if self.since is not None and letter.failed_at < self.since:
                return False
            if self.until is not None and letter.failed_at > self.until:
                return False
        return True


async def list_dead_letters(
    bootstrap: Kafka, topics: Topics, selection: DeadLetterFilter | None = None
) -> list[DeadLetter]:
    """Read the whole DLQ topic; return the letters not yet replayed that match."""
    letters, replayed = await _read(bootstrap, topics.dlq)
    wanted = selection or DeadLetterFilter()
    return [
        letter for letter in letters if letter.position not in replayed and wanted.matches(letter)
    ]


async def replay_dead_letters(
    bootstrap: Kafka, topics: Topics, letters: Iterable[DeadLetter]
) -> int:
    """Republish each letter's change (attempts reset), then mark it replayed; return count."""
    producer = AIOKafkaProducer(**client_options(bootstrap), enable_idempotence=True, acks="all")
    await producer.start()
    count = 0
    try:
        for letter in letters:
            value = _fresh_attempts(letter.value)
            await producer.send_and_wait(
                topics.changes,
                value=value,
                key=letter.key.encode(),
                headers=[("replayed-from", f"{topics.dlq}/{letter.position}".encode())],
            )
            await producer.send_and_wait(
                topics.dlq,
                value=None,
                key=letter.key.encode(),
                headers=[(REPLAY_OF, letter.position.encode())],
            )
            count += 1
    finally:
        await producer.stop()
    return count


def _fresh_attempts(value: bytes) -> bytes:
    try:
        change = QueuedChange.from_bytes(value)
    except ValueError:
        return value  # replayed as it was; the consumer parks it again with its reason
    return change.model_copy(update={"attempts": 0}).to_bytes()


async def _read(bootstrap: Kafka, topic: str) -> tuple[list[DeadLetter], set[str]]:
    """Read a topic from the start to its current end, without joining a group."""
    consumer = AIOKafkaConsumer(
        **client_options(bootstrap), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    letters: list[DeadLetter] = []
    replayed: set[str] = set()
    try:
        partitions = [TopicPartition(topic, p) for p in (await _partitions(consumer, topic))]
        if not partitions:
            return letters, replayed
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    headers = {k: v.decode("utf-8", "replace") for k, v in record.headers or ()}
                    if REPLAY_OF in headers:
                        replayed.add(headers[REPLAY_OF])
                    else:
                        letters.append(
                            _letter(
                                record.partition, record.offset, record.key, record.value, headers
                            )
                        )
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return letters, replayed


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


def _letter(
    partition: int, offset: int, key: bytes | None, value: bytes | None, headers: dict[str, str]
) -> DeadLetter:
    school = headers.get("school")
    kind: str | None = None
    try:
        change = QueuedChange.from_bytes(value or b"")
        school, kind = change.school, change.type
    except ValueError:
        pass
    failed_at: datetime | None
    try:
        failed_at = datetime.fromisoformat(headers["failed-at"])
    except (KeyError, ValueError):
        failed_at = None
    try:
        attempts = int(headers.get("attempts", "1"))
    except ValueError:
        attempts = 1
    return DeadLetter(
        partition=partition,
        offset=offset,
        key=(key or b"").decode("utf-8", "replace"),
        school=school,
        type=kind,
        error_class=headers.get("error-class", "unknown"),
        error_detail=headers.get("error-detail", ""),
        attempts=attempts,
        failed_at=failed_at,
        value=value or b"",
    )
