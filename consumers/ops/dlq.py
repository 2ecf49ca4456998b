"""Support operations on the dead-letter queue: list a selection, replay it (each once).

Used by the admin API and the CLI alike; the DLQ's records and markers are the Kafka
adapter's business (consumers/adapters/kafka/dlq.py).
"""

from __future__ import annotations

from consumers.adapters.kafka.connection import Kafka
from consumers.adapters.kafka.dlq import (
    DeadLetter,
    DeadLetterFilter,
    list_dead_letters,
    replay_dead_letters,
)
from consumers.settings import Topics


async def list_letters(
    kafka: Kafka, topics: Topics, selection: DeadLetterFilter
) -> list[DeadLetter]:
    """Return the dead letters not replayed yet that match `selection`."""
    return await list_dead_letters(kafka, topics, selection)


async def replay_letters(
    kafka: Kafka, topics: Topics, selection: DeadLetterFilter, *, dry_run: bool = False
) -> tuple[list[DeadLetter], int]:
    """Send the matching letters back to `isams.changes`; return them and how many went."""
    letters = await list_dead_letters(kafka, topics, selection)
    if dry_run:
        return letters, 0
    return letters, await replay_dead_letters(kafka, topics, letters)
