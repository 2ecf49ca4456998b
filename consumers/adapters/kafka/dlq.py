"""The parking envelope on Kafka (retry and DLQ headers, written and read here only), and
the dead-letter queue's list and replay.

- A change parked for a retry goes to `isams.changes.retry` with `not-before` (epoch
  seconds), `attempts` and `error-detail`.
- A dead letter goes to `isams.changes.dlq` with `error-class`, `error-detail`, `attempts`,
  `failed-at`, `source` (topic/partition/offset) and `school` (docs/design.md §2.3).
- A replay republishes the change to `isams.changes` (attempts reset) and then writes a
  marker into the DLQ topic itself (`replay-of: <partition>/<offset>`), so a change that was
  replayed is not listed or replayed again: the DLQ's state lives in Kafka, next to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from consumers.adapters.kafka.connection import Kafka
from consumers.adapters.kafka.producer import Producer
from consumers.adapters.kafka.reader import read_to_end
from consumers.events import QueuedChange
from consumers.ports import PublishError
from consumers.settings import Topics

REPLAY_OF = "replay-of"
NOT_BEFORE = "not-before"
_MAX_DETAIL = 2000  # bytes of an error's detail kept in a header

Headers = list[tuple[str, bytes]]


def retry_headers(not_before: float, attempts: int, error: str) -> Headers:
    """Return the headers of a change parked on the retry topic until `not_before`."""
    return [
        (NOT_BEFORE, f"{not_before:.3f}".encode()),
        ("attempts", str(attempts).encode()),
        ("error-detail", error.encode()[:_MAX_DETAIL]),
    ]


def dead_letter_headers(
    error_class: str, detail: str, attempts: int, source: str, school: str | None
) -> Headers:
    """Return the headers of a dead letter: why, how often tried, from where, whose."""
    headers = [
        ("error-class", error_class.encode()),
        ("error-detail", detail.encode()[:_MAX_DETAIL]),
        ("attempts", str(attempts).encode()),
        ("failed-at", datetime.now(UTC).isoformat().encode()),
        ("source", source.encode()),
    ]
    if school is not None:
        headers.append(("school", school.encode()))
    return headers


def not_before(headers: Iterable[tuple[str, bytes]] | None) -> float | None:
    """Return a parked change's `not-before` (epoch seconds), or None when it has none."""
    for key, value in headers or ():
        if key == NOT_BEFORE:
            try:
                return float(value.decode())
            except (ValueError, UnicodeDecodeError):
                return None
    return None


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
    producer = Producer(bootstrap, client_id="isams-sync-dlq-replay", timeout=30.0)
    if not await producer.connect():
        raise PublishError(f"Kafka at {bootstrap} does not answer; nothing was replayed")
    count = 0
    try:
        for letter in letters:
            key = letter.key.encode()
            origin = f"{topics.dlq}/{letter.position}".encode()
            value = _fresh_attempts(letter.value)
            await producer.send(topics.changes, value, key, [("replayed-from", origin)])
            await producer.send(topics.dlq, None, key, [(REPLAY_OF, letter.position.encode())])
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
