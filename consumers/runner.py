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
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from consumers.adapters.budget import bulk_lane
from consumers.adapters.kafka.connection import Kafka, client_options
from consumers.adapters.kafka.dlq import not_before
from consumers.adapters.kafka.producer import Producer
from consumers.events import QueuedChange
from consumers.offsets import OffsetTracker
from consumers.outcomes import (
    Outcome,
    PermanentFailureError,
    Result,
    SchoolBlockedError,
    TransientFailureError,
)
from consumers.parking import Origin, Parking, RetrySchedule
from consumers.settings import Topics
from consumers.sync.context import KeyedLocks

log = logging.getLogger(__name__)

Processor = Callable[[QueuedChange], Awaitable[Result]]
Record: TypeAlias = ConsumerRecord[Any, Any]
_OUR_PACKAGES = frozenset({"app", "consumers", "sim"})


class ResultSink(Protocol):
    """Receives each finished change (metrics, demo counters, tests)."""

    def __call__(self, change: QueuedChange | None, result: Result) -> None: ...


ShareSink = Callable[[float], None]


@dataclass(frozen=True)
class RunnerConfig:
    """Tuning of the consumer loop."""

    bootstrap: Kafka
    group_id: str
    topics: Topics
    max_in_flight: int = 64
    """Changes of `isams.changes` being processed at once (across schools)."""
    max_parked_in_flight: int = 64
    """Changes back from the retry topic being processed at once."""
    max_bulk_in_flight: int = 8
    """Changes of a first sync (the bulk topic) being processed at once."""
    max_in_flight_per_school: int = 16
    """Live changes of one school being processed at once: a school waiting on 429s, a slow
    or a failing ManageBac+ holds at most these, never the slots of the others."""
    max_bulk_in_flight_per_school: int = 4
    """Bulk changes of one school being processed at once (its first sync's share)."""
    max_handed_out: int = 4000
    """Records handed out and not finished (waiting or running): bounds memory."""
    max_handed_out_per_school: int = 1000
    """Beyond this many of one school, its new records wait on the retry topic for a while
    (their attempts not counted), so one school's backlog never fills the others' room."""
    max_bulk_handed_out: int = 200
    """Beyond this many bulk records, the bulk partitions are paused until half are done."""
    max_batch: int = 200  # records per fetch: handed out in one go, so kept short
    commit_interval: float = 1.0
    drain_timeout: float = 30.0
    revoke_timeout: float = 5.0
    """How long a rebalance waits for the running records of partitions that go. The whole
    group waits for this callback, and a member that takes longer than the session timeout
    (10 s) is evicted and rejoins later, which starts another rebalance: a record stuck on
    one school (a long 429 pause, a ManageBac+ that hangs) would set off a storm holding
    every school's partitions. After this the records are cancelled, their offsets stay
    uncommitted and the new owner runs them again (processing is state-based and
    idempotent, as after a crash)."""
    retry: RetrySchedule = field(default_factory=RetrySchedule)
    blocked_delay: float = 15.0  # a blocked school's change waits this long between looks
    busy_delay: float = 5.0  # a busy school's overflow waits this long on the retry topic


class ChangeRunner:
    """Consume `isams.changes`, its retry topic and its bulk topic; hand each change to the
    processor, live before bulk, each school within its own share of the slots."""

    def __init__(
        self,
        config: RunnerConfig,
        process: Processor,
        on_result: ResultSink | None = None,
        on_share: ShareSink | None = None,
    ) -> None:
        self._config = config
        self._process = process
        self._on_result = on_result
        self._on_share = on_share
        self._stopping = asyncio.Event()
        topics = config.topics
        self._slots = {
            topics.changes: asyncio.Semaphore(config.max_in_flight),
            topics.retry: asyncio.Semaphore(config.max_parked_in_flight),
            topics.bulk: asyncio.Semaphore(config.max_bulk_in_flight),
        }
        self._handed_out = asyncio.Semaphore(config.max_handed_out)
        self._school_slots: dict[tuple[str, bool], asyncio.Semaphore] = {}  # by school, lane
        self._by_school: Counter[str] = Counter()  # records handed out, per school
        self._bulk_handed_out = 0
        self._bulk_paused = False
        self._offsets: OffsetTracker[TopicPartition] = OffsetTracker()
        # One chain per key and lane (live: changes and retries; bulk), and one lock per key:
        # a record's changes never run at once, and a live one never waits behind a first
        # sync's queue (the older bulk snapshot that runs after it is stale, so changes
        # nothing).
        self._tails: dict[tuple[bool, bytes | None], asyncio.Task[None]] = {}
        self._running_keys = KeyedLocks()
        self._running: set[asyncio.Task[None]] = set()
        self._waiting: dict[asyncio.Task[None], TopicPartition] = {}  # not yet processing
        self._processing: dict[asyncio.Task[None], TopicPartition] = {}
        self._revoked: set[TopicPartition] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._parking: Parking | None = None

    def stop(self) -> None:
        """Ask the loop to finish running records, commit and leave the group."""
        self._stopping.set()

    @property
    def started(self) -> bool:
        return self._consumer is not None

    async def run(self) -> None:
        """Run until `stop()`; then drain, commit and leave the group cleanly."""
        config = self._config
        producer = Producer(config.bootstrap, client_id="isams-sync-consumer")
        consumer = AIOKafkaConsumer(
            **client_options(config.bootstrap),
            group_id=config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=config.max_batch,
            # Range assignment gives partition p of every topic to the same consumer (they
            # have as many partitions), so one record's new, retried and bulk changes meet in
            # one process, whose per-key chain keeps them apart. Only one assignor is listed:
            # aiokafka 0.14 sends a JoinGroup per listed assignor, each with other metadata
            # (aio-libs/aiokafka#1168), so every join set off a second rebalance and replicas
            # starting together rebalanced each other for minutes.
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        consumer.subscribe(
            [config.topics.changes, config.topics.retry, config.topics.bulk],
            listener=_CommitOnRevoke(self),
        )
        await producer.start()
        self._parking = Parking(
            producer, config.topics, config.retry, self._gone, config.blocked_delay
        )
        try:
            self._consumer = consumer  # before start: the first assignment may come during it
            await consumer.start()
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
            self._consumer = self._parking = None

    def _gone(self, origin: Origin) -> bool:
        """Tell whether a record's parking should give up: stopping, or partition revoked."""
        partition = TopicPartition(origin.topic, origin.partition)
        return self._stopping.is_set() or partition in self._revoked

    async def _fetch_loop(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=self._config.max_batch)
            for partition, records in batch.items():
                for record in records:
                    if not await self._dispatch(partition, record):
                        return

    async def _dispatch(self, partition: TopicPartition, record: Record) -> bool:
        """Hand the record to a task of its own; False once stopping.

        Only the memory bound (`max_handed_out`) holds the fetch loop; a record then waits
        in its task for its key's previous record, its school's slot and its topic's slot.
        A school with too many records waiting has its new ones parked for a moment, and
        the bulk partitions are paused while the bulk lane is full: neither a busy school
        nor a first sync can hold back another school's live changes.
        """
        config = self._config
        if partition in self._revoked:
            return True  # fetched before its partition went: the new owner reads it again
        await self._handed_out.acquire()
        if self._stopping.is_set():
            self._handed_out.release()
            return False
        school = _school_of(record.key)
        bulk = partition.topic == config.topics.bulk
        if partition.topic == config.topics.changes and (
            self._by_school[school] >= config.max_handed_out_per_school
        ):
            # Parked in a task of its own (holding its hand-out slot, so memory stays
            # bounded): the fetch loop never waits on Kafka for a busy school.
            self._offsets.started(partition, record.offset)
            deferral = asyncio.create_task(self._defer(partition, record))
            self._running.add(deferral)

            def deferred(done: asyncio.Task[None]) -> None:
                self._handed_out.release()
                self._running.discard(done)

            deferral.add_done_callback(deferred)
            return True
        self._offsets.started(partition, record.offset)
        self._by_school[school] += 1
        if bulk:
            self._bulk_handed_out += 1
            self._pause_bulk_if_full()
        task = asyncio.create_task(self._run(partition, record, school))
        self._running.add(task)
        self._waiting[task] = partition

        def forget(done: asyncio.Task[None]) -> None:
            self._handed_out.release()
            self._running.discard(done)
            self._waiting.pop(done, None)
            self._by_school[school] -= 1
            if not self._by_school[school]:
                del self._by_school[school]
            if bulk:
                self._bulk_handed_out -= 1
                self._resume_bulk_if_room()
            if self._tails.get((bulk, record.key)) is done:
                del self._tails[(bulk, record.key)]

        task.add_done_callback(forget)
        return True

    async def _run(self, partition: TopicPartition, record: Record, school: str) -> None:
        """Wait until a parked record is due, then run it after its key's running record,
        in a slot of its school and one of its topic.

        Two changes of one record never run at once (each reads the ledger, then writes
        ManageBac+; together, the older could land last and stay): one chain per key and
        lane keeps a lane's order, one lock per key keeps the lanes apart. The wait for
        `not-before` comes before joining the chain, so a parked record holds nobody up
        while it waits. Tasks start in the order they were created, so records of
        `isams.changes` keep their order per key.
        """
        if partition.topic == self._config.topics.retry and not await self._wait_until_due(
            partition, record
        ):
            return  # stop or rebalance: redelivered
        bulk = partition.topic == self._config.topics.bulk
        previous = self._tails.get((bulk, record.key))
        current = asyncio.current_task()
        assert current is not None
        self._tails[(bulk, record.key)] = current
        if previous is not None:
            await asyncio.wait([previous])
        lane_limit = (
            self._config.max_bulk_in_flight_per_school
            if bulk
            else self._config.max_in_flight_per_school
        )
        school_slots = self._school_slots.get((school, bulk))
        if school_slots is None:
            school_slots = self._school_slots[(school, bulk)] = asyncio.Semaphore(lane_limit)
        token = bulk_lane.set(bulk)
        try:
            async with (
                school_slots,
                self._slots[partition.topic],
                self._running_keys.hold(_text(record.key)),
            ):
                if partition in self._revoked or self._stopping.is_set():
                    return  # it waited while its partition went: the new owner runs it
                self._waiting.pop(current, None)
                self._processing[current] = partition
                try:
                    await self._handle(record)
                finally:
                    del self._processing[current]
        except Exception as exc:
            # Only a stop or a lost partition gets here (parking waits out Kafka failures):
            # the record stays uncommitted, so it is redelivered.
            log.warning(
                "change abandoned; it will be redelivered",
                extra={"key": _text(record.key), "error": type(exc).__name__},
            )
            return
        finally:
            bulk_lane.reset(token)
        self._offsets.finished(partition, record.offset)

    async def _defer(self, partition: TopicPartition, record: Record) -> None:
        """Park a busy school's new record on the retry topic for a moment (not an attempt);
        its offset was marked started when it was handed out."""
        assert self._parking is not None
        origin = Origin(record.topic, record.partition, record.offset, record.key, record.value)
        try:
            await self._parking.later(origin, self._config.busy_delay, "its school is busy")
        except Exception:  # stop or rebalance: left uncommitted, redelivered
            return
        self._offsets.finished(partition, record.offset)

    def _pause_bulk_if_full(self) -> None:
        consumer = self._consumer
        if self._bulk_paused or consumer is None:
            return
        if self._bulk_handed_out >= self._config.max_bulk_handed_out:
            bulk = [tp for tp in consumer.assignment() if tp.topic == self._config.topics.bulk]
            consumer.pause(*bulk)
            self._bulk_paused = True

    def _resume_bulk_if_room(self) -> None:
        consumer = self._consumer
        if not self._bulk_paused or consumer is None:
            return
        if self._bulk_handed_out <= self._config.max_bulk_handed_out // 2:
            consumer.resume(*consumer.paused())
            self._bulk_paused = False

    async def _handle(self, record: Record) -> None:
        """Process one record until it is applied, skipped, parked or dead-lettered."""
        origin = Origin(record.topic, record.partition, record.offset, record.key, record.value)
        try:
            change = QueuedChange.from_bytes(record.value)
        except ValueError as exc:
            # A value we cannot even read is parked with its reason, never dropped.
            await self._dead_letter(origin, None, "undecodable", str(exc)[:500], attempts=1)
            return
        attempts = change.attempts + 1
        try:
            result = await self._process(change)
        except PermanentFailureError as exc:
            await self._dead_letter(origin, change, exc.error_class, exc.detail, attempts)
            return
        except TransientFailureError as exc:
            await self._park(origin, change, str(exc), attempts)
            return
        except SchoolBlockedError as exc:
            assert self._parking is not None
            await self._parking.wait_for_school(origin, change, exc.reason)
            self._report(change, Result(Outcome.WAITING, reason=exc.reason))
            return
        except Exception as exc:
            # A bug or an unforeseen failure (the ledger, say) is retried like a transient
            # one, so the change ends applied or in the DLQ with a reason, never stuck
            # unfinished (which would also hold back every later commit of its partition).
            # Only the class and place are kept: the message may quote personal data.
            error = f"unexpected {type(exc).__name__} at {_where(exc)}"
            log.error(
                "change failed unexpectedly", extra={"key": _text(record.key), "error": error}
            )
            await self._park(origin, change, error, attempts)
            return
        self._report(change, result)

    async def _wait_until_due(self, partition: TopicPartition, record: Record) -> bool:
        """Sleep until the record's `not-before`; give up on stop or when the partition goes."""
        due = not_before(record.headers)
        while due is not None and time.time() < due:
            if self._stopping.is_set() or partition in self._revoked:
                return False
            await asyncio.sleep(min(0.25, due - time.time()))
        return not (self._stopping.is_set() or partition in self._revoked)

    async def _park(self, origin: Origin, change: QueuedChange, error: str, attempts: int) -> None:
        """Park the change for a retry (or the DLQ after the last delay)."""
        assert self._parking is not None
        if await self._parking.retry_later(origin, change, error, attempts):
            reason = f"retries-exhausted: {error}"
            self._report(change, Result(Outcome.DEAD_LETTERED, reason=reason))

    async def _dead_letter(
        self,
        origin: Origin,
        change: QueuedChange | None,
        error_class: str,
        detail: str,
        attempts: int,
    ) -> None:
        assert self._parking is not None
        await self._parking.dead_letter(origin, change, error_class, detail, attempts)
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
        """Finish the records of partitions that go, commit them, and forget them.

        Records that are still waiting for a slot are not started: they stay uncommitted
        and the partitions' new owner runs them.
        """
        self._revoked |= revoked
        for task, partition in list(self._waiting.items()):
            if partition in revoked:
                task.cancel()  # its offset stays in flight: the commit stops before it
        deadline = time.monotonic() + self._config.revoke_timeout
        while any(partition in revoked for partition in self._processing.values()):
            if self._stopping.is_set():
                break
            if time.monotonic() >= deadline:
                await self._cancel_processing(revoked)
                break
            await asyncio.sleep(0.05)
        await self._commit()
        self._offsets.forget(revoked)

    async def _cancel_processing(self, revoked: set[TopicPartition]) -> None:
        """Cancel the records of `revoked` partitions still running (left uncommitted)."""
        stuck = [task for task, partition in self._processing.items() if partition in revoked]
        log.warning(
            "records still running when their partitions went; cancelled, the new owner "
            "runs them again",
            extra={"records": len(stuck), "waited_s": self._config.revoke_timeout},
        )
        for task in stuck:
            task.cancel()
        await asyncio.wait(stuck, timeout=1.0)  # cancelled at their next await

    async def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Take this consumer's share of every school's ManageBac+ budget: its part of the
        partitions of `isams.changes` (keys spread a school's records over all of them)."""
        self._revoked -= assigned
        self._bulk_paused = False  # new assignments start unpaused: judge the lane again
        self._pause_bulk_if_full()
        topic = self._config.topics.changes
        total = await self._partition_count(topic)
        mine = sum(1 for partition in assigned if partition.topic == topic)
        share = mine / total if total else 1.0
        log.info("partitions assigned", extra={"partitions": mine, "of": total, "share": share})
        if self._on_share is not None:
            self._on_share(share)

    async def _partition_count(self, topic: str) -> int:
        """Return how many partitions `topic` has (0 when Kafka does not say)."""
        consumer = self._consumer
        if consumer is None:
            return 0
        known = consumer.partitions_for_topic(topic)
        if not known:
            # Right after joining, the consumer's metadata may not list the topic yet: ask
            # the cluster (aiokafka has no public call for it).
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                async with asyncio.timeout(5.0):
                    cluster = await consumer._client.fetch_all_metadata()
                    known = cluster.partitions_for_topic(topic)
        return len(known or ())


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Commit completed work before partitions move to another consumer."""

    def __init__(self, runner: ChangeRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._runner.partitions_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._runner.partitions_assigned(set(assigned))


def _where(exc: BaseException) -> str:
    """Return `file.py:line` of the innermost frame of our code (else the innermost)."""
    ours = innermost = None
    tb = exc.__traceback__
    while tb is not None:
        innermost = tb
        code = tb.tb_frame.f_code
        root = str(tb.tb_frame.f_globals.get("__name__", "")).split(".", 1)[0]
        library = (
            root in sys.stdlib_module_names
            or "-packages/" in code.co_filename
            or code.co_filename.startswith("<")  # generated code, e.g. SQLAlchemy's
        )
        if root in _OUR_PACKAGES or not library:
            ours = tb
        tb = tb.tb_next
    frame = ours or innermost
    if frame is None:
        return "?"
    return f"{frame.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.tb_lineno}"


def _school_of(key: bytes | None) -> str:
    """Return the school of a record, from its key `school:kind:id`."""
    return (key or b"").split(b":", 1)[0].decode("utf-8", "replace")


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value is not None else ""
