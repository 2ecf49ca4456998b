"""The Kafka consumer loop: fetch → process → commit, with a named commit decision.

Changes with different keys in one fetched batch run concurrently (bounded); changes with
the same key run in order. Offsets are committed only once every change of the batch is
applied, skipped or dead-lettered, so a failure is never passed over.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from app.events import QueuedChange
from app.settings import Topics
from consumers.outcomes import Outcome, PermanentFailureError, Result, TransientFailureError

log = logging.getLogger(__name__)

Processor = Callable[[QueuedChange], Awaitable[Result]]


class ResultSink(Protocol):
    """Receives each finished change (metrics, demo counters)."""

    def __call__(self, change: QueuedChange | None, result: Result) -> None: ...


@dataclass(frozen=True)
class RunnerConfig:
    """Tuning of the consumer loop."""

    bootstrap: str
    group_id: str
    topics: Topics
    max_in_flight: int = 32
    max_batch: int = 500
    transient_backoff_initial: float = 0.5
    transient_backoff_max: float = 30.0


class ChangeRunner:
    """Consume `isams.changes` and hand each change to the processor."""

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
        self._limit = asyncio.Semaphore(config.max_in_flight)
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    def stop(self) -> None:
        """Ask the loop to finish in-flight work, commit and leave the group."""
        self._stopping.set()

    @property
    def started(self) -> bool:
        return self._consumer is not None

    async def run(self) -> None:
        """Run until `stop()`; commit what finished, then leave the group cleanly."""
        config = self._config
        self._producer = AIOKafkaProducer(
            bootstrap_servers=config.bootstrap, enable_idempotence=True, acks="all"
        )
        self._consumer = AIOKafkaConsumer(
            config.topics.changes,
            bootstrap_servers=config.bootstrap,
            group_id=config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=config.max_batch,
        )
        await self._producer.start()
        try:
            await self._consumer.start()
            try:
                await self._loop(self._consumer)
            finally:
                await self._consumer.stop()  # leaves the group
        finally:
            await self._producer.stop()
            self._consumer = None
            self._producer = None

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            batch = await consumer.getmany(timeout_ms=500, max_records=self._config.max_batch)
            if not batch:
                continue
            await self._run_batch(batch)
            await self._commit(consumer, batch)

    async def _run_batch(self, batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        """Run every record; same key in order, different keys concurrently."""
        by_key: dict[bytes | None, list[ConsumerRecord[Any, Any]]] = defaultdict(list)
        for records in batch.values():
            for record in records:
                by_key[record.key].append(record)
        await asyncio.gather(*(self._run_in_order(chain) for chain in by_key.values()))

    async def _run_in_order(self, chain: Sequence[ConsumerRecord[Any, Any]]) -> None:
        for record in chain:
            async with self._limit:
                await self._run_one(record)

    async def _run_one(self, record: ConsumerRecord[Any, Any]) -> None:
        try:
            change = QueuedChange.from_bytes(record.value)
        except ValueError as exc:
            # A value we cannot even read is parked with its reason, never dropped.
            await self._dead_letter(record, None, "undecodable", str(exc)[:500])
            return
        backoff = self._config.transient_backoff_initial
        attempts = 0
        while True:
            attempts += 1
            try:
                result = await self._process(change)
            except PermanentFailureError as exc:
                await self._dead_letter(record, change, exc.error_class, exc.detail, attempts)
                return
            except TransientFailureError as exc:
                log.warning(
                    "change will be retried",
                    extra={"key": _text(record.key), "attempt": attempts, "error": str(exc)},
                )
                await asyncio.sleep(backoff * (0.5 + random.random()))  # noqa: S311  (jitter, not crypto)
                backoff = min(backoff * 2, self._config.transient_backoff_max)
                continue
            self._report(change, result)
            return

    async def _dead_letter(
        self,
        record: ConsumerRecord[Any, Any],
        change: QueuedChange | None,
        error_class: str,
        detail: str,
        attempts: int = 1,
    ) -> None:
        assert self._producer is not None
        headers = [
            ("error-class", error_class.encode()),
            ("error-detail", detail.encode()[:2000]),
            ("attempts", str(attempts).encode()),
            ("failed-at", datetime.now(UTC).isoformat().encode()),
            ("source-offset", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        await self._producer.send_and_wait(
            self._config.topics.dlq, value=record.value, key=record.key, headers=headers
        )
        log.error("change dead-lettered", extra={"key": _text(record.key), "error": error_class})
        self._report(change, Result(Outcome.DEAD_LETTERED, reason=f"{error_class}: {detail}"))

    def _report(self, change: QueuedChange | None, result: Result) -> None:
        if self._on_result is not None:
            self._on_result(change, result)

    async def _commit(
        self,
        consumer: AIOKafkaConsumer,
        batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]],
    ) -> None:
        """Commit after every change of the batch is finished: the commit decision."""
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # After a rebalance the partitions may be someone else's; they redo the work,
            # which is harmless because processing is state-based and idempotent.
            log.warning("commit failed; the batch will be redelivered", extra={"error": str(exc)})


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value is not None else ""
