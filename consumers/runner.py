"""The Kafka consumer loop: fetch → dispatch → process → commit, with named decisions.

- Order: records with the same key run one after another; other keys run concurrently, up
  to `max_in_flight` at a time (the fetch waits when that many are running).
- Commit: only up to the lowest offset still in flight per partition (`OffsetTracker`), so
  a failure is never passed over because a later record succeeded.
- Failure: a permanent one goes to the DLQ topic with its reason; a transient one is parked
  on the retry topic with a `not-before` time and comes back after it, without blocking
  other records; after the last delay it goes to the DLQ too.
- Rebalance: before partitions go, their running records finish and their offsets are
  committed. Stop (SIGTERM): stop fetching, finish what runs, commit, leave the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeAlias

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import KafkaError

from app.events import QueuedChange
from app.settings import Topics
from consumers.offsets import OffsetTracker
from consumers.outcomes import Outcome, PermanentFailureError, Result, TransientFailureError

log = logging.getLogger(__name__)

Processor = Callable[[QueuedChange], Awaitable[Result]]
Record: TypeAlias = ConsumerRecord[Any, Any]
NOT_BEFORE = "not-before"


class ResultSink(Protocol):
    """Receives each finished change (metrics, demo counters, tests)."""

    def __call__(self, change: QueuedChange | None, result: Result) -> None: ...


@dataclass(frozen=True)
class RetrySchedule:
    """How long a parked change waits before each new attempt; then it is dead-lettered."""

    delays: tuple[float, ...] = (2.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

    def delay_after(self, attempts: int) -> float | None:
        """Return the wait after `attempts` failed attempts, or None to give up."""
        return self.delays[attempts - 1] if attempts <= len(self.delays) else None


@dataclass(frozen=True)
class RunnerConfig:
    """Tuning of the consumer loop."""

    bootstrap: str
    group_id: str
    topics: Topics
    max_in_flight: int = 64
    max_parked_in_flight: int = 256
    max_batch: int = 500
    commit_interval: float = 1.0
    drain_timeout: float = 30.0
    retry: RetrySchedule = field(default_factory=RetrySchedule)


class ChangeRunner:
    """Consume `isams.changes` and `isams.changes.retry`; hand each change to the processor."""

    def __init__(
        self,
        config: RunnerConfig,
        process: Processor,
        on_result: ResultSink | None = None,
    ) -> None:
        self._config = config
        self._process = process
        self._on_result = on_result
        self._stopping = asyncio.Event()
        self._slots = {
            config.topics.changes: asyncio.Semaphore(config.max_in_flight),
            config.topics.retry: asyncio.Semaphore(config.max_parked_in_flight),
        }
        self._offsets: OffsetTracker[TopicPartition] = OffsetTracker()
        self._tails: dict[tuple[str, bytes | None], asyncio.Task[None]] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._revoked: set[TopicPartition] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    def stop(self) -> None:
        """Ask the loop to finish running records, commit and leave the group."""
        self._stopping.set()

    @property
    def started(self) -> bool:
        return self._consumer is not None

    async def run(self) -> None:
        """Run until `stop()`; then drain, commit and leave the group cleanly."""
        config = self._config
        producer = AIOKafkaProducer(
            bootstrap_servers=config.bootstrap, enable_idempotence=True, acks="all"
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=config.bootstrap,
            group_id=config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=config.max_batch,
        )
        consumer.subscribe(
            [config.topics.changes, config.topics.retry], listener=_CommitOnRevoke(self)
        )
        await producer.start()
        try:
            await consumer.start()
            self._consumer, self._producer = consumer, producer
            committer = asyncio.create_task(self._commit_periodically())
            try:
                await self._fetch_loop(consumer)
            finally:
                await self._drain(self._running)
                committer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await committer
                await self._commit()
                await consumer.stop()  # leaves the group
        finally:
            await producer.stop()
            self._consumer = self._producer = None

    async def _fetch_loop(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=self._config.max_batch)
            for partition, records in batch.items():
                for record in records:
                    if not await self._dispatch(partition, record):
                        return

    async def _dispatch(self, partition: TopicPartition, record: Record) -> bool:
        """Start the record after the previous one with its key; False once stopping."""
        slots = self._slots[partition.topic]
        await slots.acquire()
        if self._stopping.is_set():
            slots.release()
            return False
        self._revoked.discard(partition)
        self._offsets.started(partition, record.offset)
        chain = (partition.topic, record.key)
        task = asyncio.create_task(self._run_after(self._tails.get(chain), partition, record))
        self._tails[chain] = task
        self._running.add(task)

        def forget(done: asyncio.Task[None]) -> None:
            slots.release()
            self._running.discard(done)
            if self._tails.get(chain) is done:
                del self._tails[chain]

        task.add_done_callback(forget)
        return True

    async def _run_after(
        self, previous: asyncio.Task[None] | None, partition: TopicPartition, record: Record
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        if await self._handle(partition, record):
            self._offsets.finished(partition, record.offset)

    async def _handle(self, partition: TopicPartition, record: Record) -> bool:
        """Process one record; return False if it was abandoned (stop or rebalance)."""
        try:
            change = QueuedChange.from_bytes(record.value)
        except ValueError as exc:
            # A value we cannot even read is parked with its reason, never dropped.
            await self._dead_letter(record, None, "undecodable", str(exc)[:500], attempts=1)
            return True
        if partition.topic == self._config.topics.retry and not await self._wait_until_due(
            partition, record
        ):
            return False
        attempts = change.attempts + 1
        try:
            result = await self._process(change)
        except PermanentFailureError as exc:
            await self._dead_letter(record, change, exc.error_class, exc.detail, attempts)
            return True
        except TransientFailureError as exc:
            await self._park(record, change, str(exc), attempts)
            return True
        self._report(change, result)
        return True

    async def _wait_until_due(self, partition: TopicPartition, record: Record) -> bool:
        """Sleep until the record's `not-before`; give up on stop or when the partition goes."""
        due = _header_float(record, NOT_BEFORE)
        while due is not None and time.time() < due:
            if self._stopping.is_set() or partition in self._revoked:
                return False
            await asyncio.sleep(min(0.25, due - time.time()))
        return not (self._stopping.is_set() or partition in self._revoked)

    async def _park(self, record: Record, change: QueuedChange, error: str, attempts: int) -> None:
        """Send the change to the retry topic, or to the DLQ after the last delay."""
        delay = self._config.retry.delay_after(attempts)
        if delay is None:
            await self._dead_letter(record, change, "retries-exhausted", error, attempts)
            return
        assert self._producer is not None
        parked = change.model_copy(update={"attempts": attempts})
        headers = [
            (NOT_BEFORE, f"{time.time() + delay:.3f}".encode()),
            ("attempts", str(attempts).encode()),
            ("error-detail", error.encode()[:2000]),
        ]
        await self._producer.send_and_wait(
            self._config.topics.retry, value=parked.to_bytes(), key=record.key, headers=headers
        )
        log.warning(
            "change parked for a retry",
            extra={"key": _text(record.key), "attempt": attempts, "in_s": delay, "error": error},
        )

    async def _dead_letter(
        self,
        record: Record,
        change: QueuedChange | None,
        error_class: str,
        detail: str,
        attempts: int,
    ) -> None:
        assert self._producer is not None
        headers = [
            ("error-class", error_class.encode()),
            ("error-detail", detail.encode()[:2000]),
            ("attempts", str(attempts).encode()),
            ("failed-at", datetime.now(UTC).isoformat().encode()),
            ("source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        if change is not None:
            headers.append(("school", change.school.encode()))
        await self._producer.send_and_wait(
            self._config.topics.dlq, value=record.value, key=record.key, headers=headers
        )
        log.error("change dead-lettered", extra={"key": _text(record.key), "error": error_class})
        self._report(change, Result(Outcome.DEAD_LETTERED, reason=f"{error_class}: {detail}"))

    def _report(self, change: QueuedChange | None, result: Result) -> None:
        if self._on_result is not None:
            self._on_result(change, result)

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._config.commit_interval)
            await self._commit()

    async def _commit(self) -> None:
        """Commit what is safe to commit (the commit decision lives in OffsetTracker)."""
        offsets = self._offsets.committable()
        if not offsets or self._consumer is None:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            # After a rebalance the partitions may be someone else's; they redo the work,
            # which is harmless because processing is state-based and idempotent.
            log.warning("commit failed; records will be redelivered", extra={"error": str(exc)})
            return
        self._offsets.committed(offsets)

    async def _drain(self, tasks: set[asyncio.Task[None]]) -> None:
        """Let running records finish (bounded); cancel what is still running after that."""
        pending = set(tasks)
        if not pending:
            return
        _, still_running = await asyncio.wait(pending, timeout=self._config.drain_timeout)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running)

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Finish the records of partitions that go, commit them, and forget them."""
        self._revoked |= revoked
        while any(self._offsets.in_flight(partition) for partition in revoked):
            if self._stopping.is_set():
                break
            await asyncio.sleep(0.05)
        await self._commit()
        self._offsets.forget(revoked)


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Commit completed work before partitions move to another consumer."""

    def __init__(self, runner: ChangeRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._runner.partitions_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None


def _header_float(record: Record, name: str) -> float | None:
    for key, value in record.headers or ():
        if key == name:
            try:
                return float(value.decode())
            except (ValueError, UnicodeDecodeError):
                return None
    return None


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value is not None else ""
