"""The dead-letter queue on Kafka: list parked changes and replay them.

A replay republishes the change to `isams.changes` (attempts reset) and then writes a
marker into the DLQ topic itself (`replay-of: <partition>/<offset>`), so a change that was
replayed is not listed or replayed again: the DLQ's state lives in Kafka, next to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaProducer

from app.events import QueuedChange
from app.kafka_connection import Kafka, client_options
from app.settings import Topics
from consumers.adapters.topic_reader import read_to_end

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
    """Read the dead letters, and the positions already replayed (marked in the topic)."""
    letters: list[DeadLetter] = []
    replayed: set[str] = set()
    for record in await read_to_end(bootstrap, topic):
        headers = {k: v.decode("utf-8", "replace") for k, v in record.headers or ()}
        if REPLAY_OF in headers:
            replayed.add(headers[REPLAY_OF])
        else:
            letters.append(
                _letter(record.partition, record.offset, record.key, record.value, headers)
            )
    return letters, replayed


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
