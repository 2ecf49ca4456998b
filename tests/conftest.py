"""Shared fixtures: the real local Kafka broker and per-test topics.

`scripts/run-tests.sh` starts the broker before pytest runs; a test that needs it fails
(not skips) with a clear message when it does not answer.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from app.settings import Topics
from consumers.adapters.kafka_admin import delete_topics, ensure_topics, ping


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Return the bootstrap address of the test broker, failing loudly if it is down."""
    bootstrap = os.environ.get("SYNC_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    if not asyncio.run(ping(bootstrap, timeout=10)):
        pytest.fail(
            f"Kafka does not answer on {bootstrap}: run `scripts/kafka.sh start` "
            "(make test does this for you)"
        )
    return bootstrap


@pytest.fixture
async def topics(kafka_bootstrap: str) -> AsyncIterator[Topics]:
    """Give each test its own uuid-prefixed topics, created on the real broker."""
    prefix = f"test-{uuid.uuid4().hex[:12]}."
    names = Topics.with_prefix(prefix)
    await ensure_topics(kafka_bootstrap, names.all(), partitions=3)
    yield names
    await delete_topics(kafka_bootstrap, names.all())
