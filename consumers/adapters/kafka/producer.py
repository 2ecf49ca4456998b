"""The one Kafka producer factory of the service, with its one renewal rule.

Every message this service writes (webhook changes, backfill and poll changes, retries,
dead letters, DLQ replays) goes through a `Producer`: an idempotent `acks=all` aiokafka
producer whose every wait is bounded. Two rules live here and nowhere else:
- **Not connected is a state, not a crash.** When Kafka is unreachable at start the
  producer keeps reconnecting in the background; meanwhile sends fail fast with the reason.
- **Renewal.** After a broker restart that cut batches off, aiokafka's idempotent producer
  keeps sending with sequence numbers the broker refuses (OutOfOrderSequenceNumber,
  UnknownProducerId) and never recovers (aio-libs/aiokafka#1017). Only a new producer (a
  new producer id) does: the broken one is dropped and a fresh one connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
)

from consumers.adapters.kafka.connection import Kafka, client_options
from consumers.adapters.kafka.partitioner import default_partitioner
from consumers.ports import MessageTooLargeError, OutgoingMessage, PublishError

log = logging.getLogger(__name__)

Prepare = Callable[[], Awaitable[None]]
Headers = Sequence[tuple[str, bytes]]
# After these, an idempotent producer stays broken: only a new producer recovers.
PRODUCER_STATE_ERRORS = (OutOfOrderSequenceNumber, UnknownProducerId)


def needs_renewal(error: BaseException) -> bool:
    """Tell whether `error` means the producer's idempotence state is lost for good."""
    return isinstance(error, PRODUCER_STATE_ERRORS)


def describe(exc: BaseException) -> str:
    """Describe an error by class and message; Kafka errors carry no personal data."""
    name, text = exc.__class__.__name__, str(exc)
    if not text or text.startswith(name):  # aiokafka's messages often start with the name
        return text or name
    return f"{name}: {text}"


class _NotConnected:
    """There is no producer: Kafka was unreachable, it broke, or it was never started."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Producer:
    """An idempotent `acks=all` producer that reconnects and renews itself.

    `prepare` runs after each successful connection, before the first send on it (the
    service creates its topics there). Every wait is bounded by `timeout` seconds.
    """

    def __init__(
        self,
        kafka: Kafka,
        *,
        client_id: str,
        prepare: Prepare | None = None,
        timeout: float = 5.0,
        reconnect_interval: float = 2.0,
    ) -> None:
        self._kafka = kafka
        self._client_id = client_id
        self._prepare = prepare
        self._timeout = timeout
        self._reconnect_interval = reconnect_interval
        self._state: AIOKafkaProducer | _NotConnected = _NotConnected("not started")
        self._reconnector: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return not isinstance(self._state, _NotConnected)

    async def start(self) -> None:
        """Connect once; if Kafka is unreachable, keep trying in the background instead."""
        if not await self.connect():
            self._reconnect_in_background()

    async def connect(self) -> bool:
        """Try once to start a producer and run `prepare`; return whether it worked."""
        async with self._lock:
            if self.connected:
                return True
            producer = AIOKafkaProducer(
                **client_options(self._kafka),
                client_id=self._client_id,
                enable_idempotence=True,
                acks="all",
                request_timeout_ms=int(self._timeout * 1000),
                retry_backoff_ms=100,
                # Concurrent sends share batches (aiokafka batches what arrives while a
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
                reason = describe(exc)
                if not isinstance(self._state, _NotConnected) or self._state.reason != reason:
                    log.warning("kafka at %s unavailable: %s", self._kafka, reason)
                self._state = _NotConnected(reason)
                return False
            self._state = producer
            log.info("kafka producer %s connected to %s", self._client_id, self._kafka)
            return True

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

    async def send_all(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        """Send every message, then wait for every acknowledgement (bounded by the timeout).

        Raises `PublishError` (or `MessageTooLargeError`) unless Kafka acknowledged all.
        """
        producer = self._current()
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
            await self._renew_if_broken(producer, exc)
            raise PublishError(f"Kafka did not accept the messages: {describe(exc)}") from exc
        for result in results:
            if isinstance(result, MessageSizeTooLargeError):
                raise MessageTooLargeError(str(result)) from result
            if isinstance(result, BaseException):
                await self._renew_if_broken(producer, result)
                raise PublishError(f"Kafka did not acknowledge: {describe(result)}") from result

    async def send(
        self, topic: str, value: bytes | None, key: bytes | None, headers: Headers = ()
    ) -> None:
        """Send one message and wait for its acknowledgement; `PublishError` otherwise."""
        producer = self._current()
        try:
            async with asyncio.timeout(self._timeout):
                await producer.send_and_wait(topic, value=value, key=key, headers=list(headers))
        except MessageSizeTooLargeError as exc:
            raise MessageTooLargeError(str(exc)) from exc
        except (KafkaError, OSError, TimeoutError) as exc:
            await self._renew_if_broken(producer, exc)
            raise PublishError(f"Kafka did not acknowledge: {describe(exc)}") from exc

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
            log.debug("kafka ping failed: %s", describe(exc))
            return False
        return True

    def _current(self) -> AIOKafkaProducer:
        state = self._state
        if isinstance(state, _NotConnected):
            raise PublishError(f"Kafka is unavailable ({state.reason})")
        return state

    async def _renew_if_broken(self, producer: AIOKafkaProducer, error: BaseException) -> None:
        """Apply the renewal rule: drop a producer the broker no longer accepts, reconnect."""
        if not needs_renewal(error):
            return
        async with self._lock:
            if self._state is not producer:
                return  # another send renewed it already
            self._state = _NotConnected(describe(error))
        log.warning("kafka producer state lost (%s); renewing it", describe(error))
        await _close(producer, self._timeout)
        self._reconnect_in_background(at_once=True)

    def _reconnect_in_background(self, at_once: bool = False) -> None:
        if self._reconnector is None or self._reconnector.done():
            self._reconnector = asyncio.create_task(
                self._reconnect_forever(at_once), name=f"kafka-reconnect-{self._client_id}"
            )

    async def _reconnect_forever(self, at_once: bool) -> None:
        if at_once and await self.connect():
            return
        while True:
            await asyncio.sleep(self._reconnect_interval)
            if await self.connect():
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
            describe(exc),
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
