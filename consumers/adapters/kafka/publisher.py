"""Durably hand messages to Kafka: the `PublisherPort` adapter on the service's producer.

`KafkaPublisher` answers within a few seconds whatever Kafka does: a call either has every
message acknowledged by all in-sync replicas (`acks=all`, idempotent producer) or raises
`PublishError`, which the webhook route turns into 503 + Retry-After. If Kafka is down when
the service starts, the service still starts; the producer keeps reconnecting, and the
publisher serves again as soon as Kafka is back (consumers/adapters/kafka/producer.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from consumers.adapters.kafka.connection import Kafka
from consumers.adapters.kafka.producer import Prepare, Producer
from consumers.ports import OutgoingMessage


class KafkaPublisher:
    """Publish whole requests: every message acknowledged, or `PublishError`."""

    def __init__(
        self,
        kafka: Kafka,
        *,
        prepare: Prepare | None = None,
        timeout: float = 5.0,
        reconnect_interval: float = 2.0,
        client_id: str = "isams-sync-ingest",
    ) -> None:
        self._producer = Producer(
            kafka,
            client_id=client_id,
            prepare=prepare,
            timeout=timeout,
            reconnect_interval=reconnect_interval,
        )

    @property
    def connected(self) -> bool:
        return self._producer.connected

    async def start(self) -> None:
        """Connect once; if Kafka is unreachable, keep trying in the background instead."""
        await self._producer.start()

    async def stop(self) -> None:
        """Stop reconnecting, flush what is in flight and close the producer."""
        await self._producer.stop()

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        """Send every message, then wait for every acknowledgement (bounded by the timeout)."""
        await self._producer.send_all(topic, messages)

    async def ping(self) -> bool:
        """Return whether the producer is connected and a metadata request succeeds."""
        return await self._producer.ping()
