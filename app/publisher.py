"""Durably hand messages to Kafka: the port the ingest route needs, and its aiokafka adapter.

`KafkaPublisher` answers within a few seconds whatever Kafka does: a request either has every
message acknowledged by all in-sync replicas (`acks=all`, idempotent producer) or gets a
`PublishError`, which the route turns into 503 + Retry-After. If Kafka is down when the
service starts, the service still starts; a background task keeps reconnecting, and the
publisher serves again as soon as Kafka is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
)

from app.events import ID_FIELDS, ChangeEvent, QueuedChange
from app.kafka_connection import Kafka, client_options
from app.partitioner import default_partitioner

log = logging.getLogger(__name__)

Prepare = Callable[[], Awaitable[None]]
# Errors after which an idempotent producer stays broken: only a new producer recovers.
_PRODUCER_STATE_ERRORS = (OutOfOrderSequenceNumber, UnknownProducerId)


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One Kafka record to publish: key, value and headers, already encoded."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class PublishError(Exception):
    """Raised when Kafka did not acknowledge every message of a publish call."""


class MessageTooLargeError(PublishError):
    """Raised when one message is larger than Kafka accepts; retrying will not help."""


class Publisher(Protocol):
    """What the ingest route needs from Kafka."""

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        """Return once Kafka acknowledged every message; else raise PublishError."""
        ...

    async def ping(self) -> bool:
        """Return whether Kafka answers now (readiness)."""
        ...


class _NotConnected:
    """The publisher has no producer: Kafka was unreachable, or it was never started."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class KafkaPublisher:
    """Publish with an idempotent `acks=all` aiokafka producer, reconnecting in the background.

    `prepare` runs after each successful connection, before the first publish on it (the
    service creates its topics there). Every wait is bounded by `timeout` seconds.
    """

    def __init__(
        self,
        bootstrap: Kafka,
        *,
        prepare: Prepare | None = None,
        timeout: float = 5.0,
        reconnect_interval: float = 2.0,
        client_id: str = "isams-sync-ingest",
    ) -> None:
        self._bootstrap = bootstrap
        self._prepare = prepare
        self._timeout = timeout
        self._reconnect_interval = reconnect_interval
        self._client_id = client_id
        self._state: AIOKafkaProducer | _NotConnected = _NotConnected("not started")
        self._reconnector: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return not isinstance(self._state, _NotConnected)

    async def start(self) -> None:
        """Connect once; if Kafka is unreachable, keep trying in the background instead."""
        if await self._connect():
            return
        self._reconnector = asyncio.create_task(self._reconnect_forever(), name="kafka-reconnect")

    async def stop(self) -> None:
        """Stop reconnecting, flush what is in flight and close the producer."""
        if self._reconnector is not None:
            self._reconnector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnector
            self._reconnector = None
        async with self._lock:
            state, self._state = self._state, _NotConnected("stopped")
        if isinstance(state, AIOKafkaProducer):
            await _close(state, self._timeout)

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        """Send every message, then wait for every acknowledgement (bounded by the timeout)."""
        producer = self._state
        if isinstance(producer, _NotConnected):
            raise PublishError(f"Kafka is unavailable ({producer.reason})")
        try:
            async with asyncio.timeout(self._timeout):
                pending = [
                    await producer.send(
                        topic, value=message.value, key=message.key, headers=list(message.headers)
                    )
                    for message in messages
                ]
                results = [await _outcome(future) for future in pending]
        except MessageSizeTooLargeError as exc:
            raise MessageTooLargeError(str(exc)) from exc
        except (KafkaError, OSError, TimeoutError) as exc:
            raise PublishError(f"Kafka did not accept the messages: {_name(exc)}") from exc
        for result in results:
            if isinstance(result, MessageSizeTooLargeError):
                raise MessageTooLargeError(str(result)) from result
            if isinstance(result, _PRODUCER_STATE_ERRORS):
                await self._replace(producer, result)
            if isinstance(result, BaseException):
                raise PublishError(f"Kafka did not acknowledge: {_name(result)}") from result

    async def _replace(self, producer: AIOKafkaProducer, error: BaseException) -> None:
        """Drop a producer whose idempotence state the broker no longer accepts; reconnect.

        After a broker restart that cut batches off, aiokafka's idempotent producer keeps
        sending with sequence numbers the broker refuses (OutOfOrderSequenceNumber) and never
        recovers (aio-libs/aiokafka#1017). A new producer gets a new producer id.
        """
        async with self._lock:
            if self._state is not producer:
                return  # another request replaced it already
            self._state = _NotConnected(_name(error))
        log.warning("kafka producer state lost (%s); reconnecting", _name(error))
        await _close(producer, self._timeout)
        if self._reconnector is None or self._reconnector.done():
            self._reconnector = asyncio.create_task(
                self._reconnect_forever(), name="kafka-reconnect"
            )

    async def ping(self) -> bool:
        """Return whether the producer is connected and a metadata request succeeds."""
        producer = self._state
        if isinstance(producer, _NotConnected):
            return False
        try:
            async with asyncio.timeout(self._timeout):
                # aiokafka exposes its client as `producer.client`; one metadata round trip
                # over the producer's own connections is the cheapest honest check.
                await producer.client.fetch_all_metadata()
        except (KafkaError, OSError, TimeoutError) as exc:
            log.debug("kafka ping failed: %s", _name(exc))
            return False
        return True

    async def _connect(self) -> bool:
        """Try once to start a producer and run `prepare`; return whether it worked."""
        async with self._lock:
            if self.connected:
                return True
            producer = AIOKafkaProducer(
                **client_options(self._bootstrap),
                client_id=self._client_id,
                enable_idempotence=True,
                acks="all",
                request_timeout_ms=int(self._timeout * 1000),
                retry_backoff_ms=100,
                # Concurrent requests share batches (aiokafka batches what arrives while a
                # request is in flight): big batches cut the per-event cost under load; a
                # linger measured no better (bench/ingest.py) and only adds latency.
                linger_ms=0,
                max_batch_size=512 * 1024,
                partitioner=default_partitioner,
            )
            try:
                async with asyncio.timeout(self._timeout):
                    await producer.start()
                if self._prepare is not None:
                    await self._prepare()
            except Exception as exc:  # whatever failed, we stay "not connected" and retry
                await _close(producer, self._timeout)
                reason = _name(exc)
                if not isinstance(self._state, _NotConnected) or self._state.reason != reason:
                    log.warning("kafka at %s unavailable: %s", self._bootstrap, reason)
                self._state = _NotConnected(reason)
                return False
            self._state = producer
            log.info("kafka producer connected to %s", self._bootstrap)
            return True

    async def _reconnect_forever(self) -> None:
        while True:
            await asyncio.sleep(self._reconnect_interval)
            if await self._connect():
                return


async def _close(producer: AIOKafkaProducer, timeout: float) -> None:
    """Stop a producer, giving up after `timeout` (the process is going anyway)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            await producer.stop()
    except (KafkaError, OSError, TimeoutError) as exc:
        log.warning(
            "kafka producer did not stop cleanly after %.1f s: %s",
            time.monotonic() - started,
            _name(exc),
        )


async def _outcome(delivery: Awaitable[Any]) -> Any:
    """Await one delivery; return its failure instead of raising it.

    The deliveries are awaited one after the other (all were sent before the first wait,
    so this takes no longer than `asyncio.gather`, without gather's per-call machinery).
    """
    try:
        return await delivery
    except Exception as exc:  # each failure is sorted out by the caller
        return exc


def _name(exc: BaseException) -> str:
    """Describe an error by class and message; Kafka errors carry no personal data."""
    name, text = exc.__class__.__name__, str(exc)
    if not text or text.startswith(name):  # aiokafka's messages often start with the name
        return text or name
    return f"{name}: {text}"


def _ids_as_text(raw: Mapping[str, Any], event: ChangeEvent) -> Mapping[str, Any]:
    """Return the raw event with its `data` ids as text (iSAMS sends contact and employee
    ids as integers), so every message on the topic carries one form; as is otherwise."""
    data = raw.get("data")
    if not isinstance(data, Mapping) or all(
        isinstance(data.get(name), str | None) for name in ID_FIELDS
    ):
        return raw
    ids = {name: getattr(event.data, name) for name in ID_FIELDS if name in data}
    return {**raw, "data": {**data, **ids}}


def to_message(
    event: ChangeEvent,
    school_id: str,
    webhook_id: str,
    received_at: datetime,
    raw: Mapping[str, Any] | None = None,
) -> OutgoingMessage:
    """Build the `isams.changes` record: key `school:kind:id`, value the queued change.

    `raw` is the event exactly as received and validated (hot path: it is serialised as is
    instead of dumping the model again); without it the model is dumped.
    """
    if raw is None:
        value = QueuedChange.from_event(
            event, school=school_id, webhook_id=webhook_id, received_at=received_at
        ).to_bytes()
    else:
        value = orjson.dumps(
            {
                **_ids_as_text(raw, event),
                "school": school_id,
                "webhook_id": webhook_id,
                "received_at": received_at,
                "attempts": 0,
            },
            option=orjson.OPT_UTC_Z,
        )
    return OutgoingMessage(
        key=f"{school_id}:{event.kind}:{event.record_id}".encode(),
        value=value,
        headers=(
            ("webhook-id", webhook_id.encode()),
            ("school", school_id.encode()),
            ("type", event.type.encode()),
            ("content-type", b"application/json"),
        ),
    )
