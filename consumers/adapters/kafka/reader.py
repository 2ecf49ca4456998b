"""Read a Kafka topic from its start to its current end, without joining a group.

For one-off reads (the dead-letter list, benchmarks, fault-test checks), not for consuming:
the runner's group consumer is what processes changes.
"""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from consumers.adapters.kafka.connection import Kafka, client_options


async def read_to_end(kafka: Kafka, topic: str, timeout: float = 60.0) -> list[ConsumerRecord]:
    """Return every record of `topic` up to its end as of now, partition by partition.

    Raises TimeoutError when the end is not reached within `timeout` seconds (a partial
    list would pass for the whole topic).
    """
    consumer = AIOKafkaConsumer(**client_options(kafka), group_id=None, enable_auto_commit=False)
    await consumer.start()
    found: list[ConsumerRecord] = []
    try:
        await consumer._client.force_metadata_update()  # aiokafka has no public call for it
        numbers = consumer.partitions_for_topic(topic) or set()
        partitions = [TopicPartition(topic, number) for number in sorted(numbers)]
        if not partitions:
            return found
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        deadline = time.monotonic() + timeout
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end in {timeout:g} s")
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batch.items():
                found.extend(records)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return found
