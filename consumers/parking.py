"""Where a change goes when it cannot be applied now: the retry topic or the DLQ.

A transient failure parks the change on `isams.changes.retry` with a `not-before` time
(the `RetrySchedule` says how long, attempt after attempt); after the last delay, or on a
permanent failure, it goes to `isams.changes.dlq` with its reason. A record counts as
finished only once it is parked, so a send is tried again until Kafka takes it, the loop
stops or the partition goes (then the record is redelivered). The envelope (headers) is
the Kafka adapter's (consumers/adapters/kafka/dlq.py); the producer is the service's one
(consumers/adapters/kafka/producer.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from consumers.adapters.kafka.dlq import Headers, dead_letter_headers, retry_headers
from consumers.adapters.kafka.producer import Producer
from consumers.events import QueuedChange
from consumers.ports import PublishError
from consumers.settings import Topics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrySchedule:
    """How long a parked change waits before each new attempt; then it is dead-lettered."""

    delays: tuple[float, ...] = (2.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

    def delay_after(self, attempts: int) -> float | None:
        """Return the wait after `attempts` failed attempts, or None to give up."""
        return self.delays[attempts - 1] if attempts <= len(self.delays) else None


@dataclass(frozen=True)
class Origin:
    """The record being parked: where it was read, its key and its value as read."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def source(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def key_text(self) -> str:
        return self.key.decode("utf-8", "replace") if self.key is not None else ""


class Parking:
    """Park changes on the retry topic or in the DLQ; `give_up` says when to stop trying."""

    def __init__(
        self,
        producer: Producer,
        topics: Topics,
        schedule: RetrySchedule,
        give_up: Callable[[Origin], bool],
        blocked_delay: float = 15.0,
    ) -> None:
        self._producer = producer
        self._topics = topics
        self._schedule = schedule
        self._give_up = give_up
        self._blocked_delay = blocked_delay

    async def retry_later(
        self, origin: Origin, change: QueuedChange, error: str, attempts: int
    ) -> bool:
        """Park for a retry, or dead-letter after the last delay; True when dead-lettered."""
        delay = self._schedule.delay_after(attempts)
        if delay is None:
            await self.dead_letter(origin, change, "retries-exhausted", error, attempts)
            return True
        parked = change.model_copy(update={"attempts": attempts})
        headers = retry_headers(time.time() + delay, attempts, error)
        await self._send(self._topics.retry, origin, parked.to_bytes(), headers)
        log.warning(
            "change parked for a retry",
            extra={"key": origin.key_text, "attempt": attempts, "in_s": delay, "error": error},
        )
        return False

    async def wait_for_school(self, origin: Origin, change: QueuedChange, reason: str) -> None:
        """Park a change of a blocked school for a short while, its attempts not counted: it
        waits for the school's token as long as that takes, never the DLQ. The token is
        checked every `token_recheck_seconds`; the change looks again after half of it, so
        it flows well within 2 minutes of the token working (consumers/blocks.py)."""
        headers = retry_headers(time.time() + self._blocked_delay, change.attempts, reason)
        await self._send(self._topics.retry, origin, change.to_bytes(), headers)
        log.warning(
            "change waits for its school's token",
            extra={"key": origin.key_text, "in_s": self._blocked_delay},
        )

    async def later(self, origin: Origin, delay: float, why: str) -> None:
        """Put a record, as read, on the retry topic for `delay` s, its attempts as they were
        (a busy school's overflow: it did not fail, it waits its turn)."""
        headers = retry_headers(time.time() + delay, 0, why)
        await self._send(self._topics.retry, origin, origin.value, headers)

    async def dead_letter(
        self,
        origin: Origin,
        change: QueuedChange | None,
        error_class: str,
        detail: str,
        attempts: int,
    ) -> None:
        """Put the record, as read, in the DLQ with why it could not be applied."""
        school = change.school if change is not None else None
        headers = dead_letter_headers(error_class, detail, attempts, origin.source, school)
        await self._send(self._topics.dlq, origin, origin.value, headers)
        log.error("change dead-lettered", extra={"key": origin.key_text, "error": error_class})

    async def _send(
        self, topic: str, origin: Origin, value: bytes | None, headers: Headers
    ) -> None:
        """Send until Kafka takes it; raise only once the loop stops or the partition goes."""
        pause = 0.5
        while True:
            try:
                await self._producer.send(topic, value, origin.key, headers)
                return
            except PublishError as exc:
                if self._give_up(origin):
                    raise
                log.warning(
                    "Kafka refused a parked change; trying again",
                    extra={"key": origin.key_text, "error": str(exc)[:200], "in_s": pause},
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 10.0)
